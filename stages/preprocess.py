"""Stage `preprocess`: data/raw -> data/prepared/{train,test|val}.pt scaled to [-1, 1] + meta.json."""

from __future__ import annotations

import argparse

from dcgan.config import load_params
from dcgan.data.preprocess import preprocess
from dcgan.errors import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--raw", default="data/raw")
    parser.add_argument("--out", default="data/prepared")
    args = parser.parse_args()
    params = load_params(args.params)
    p = params.preprocess
    meta = preprocess(args.raw, args.out, params.seed, image_size=p.image_size,
                      channels=p.channels, max_images=p.max_images)
    counts = ", ".join(f"{s} {v['count']}" for s, v in meta["splits"].items())
    print(f"preprocess: {meta['dataset']} {meta['image_shape']} ({counts}) -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
