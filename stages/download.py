"""Stage `download`: raw files for params `dataset` into data/raw (with manifest.json)."""

from __future__ import annotations

import argparse

from dcgan.config import load_params
from dcgan.data.download import download
from dcgan.data.sources import parse_dataset
from dcgan.errors import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="data/raw")
    args = parser.parse_args()
    params = load_params(args.params)
    manifest = download(parse_dataset(params.dataset), args.out, params.download.mirror)
    print(f"download: {manifest['dataset']} -> {args.out} (sha256 {manifest['sha256'][:12]})")


if __name__ == "__main__":
    run_stage(main)
