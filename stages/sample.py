"""Images from a trained generator (not a pipeline stage; also installed as `dcgan-sample`).

    python stages/sample.py                                  # 64-image grid from data/train/generator.pt
    python stages/sample.py -n 1000 --format folder          # reports/samples/images/000000.png ...
    python stages/sample.py --format interp -n 12 --seed 3   # a latent walk: strip PNG + GIF
    python stages/sample.py runs:/<run id>/generator -n 1000 --format folder
"""

from __future__ import annotations

from dcgan.errors import run_stage
from dcgan.sampling import main

if __name__ == "__main__":
    run_stage(main)
