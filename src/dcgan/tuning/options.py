"""``dcgan tune``'s options (argparse only, so ``dcgan --help`` imports nothing heavy)."""

from __future__ import annotations

import argparse

from dcgan.config import LOSS_NAMES


def add_options(p: argparse.ArgumentParser) -> None:
    """The study's data, losses, budget, search space, storage and outputs."""
    p.add_argument("--dataset", help="data set, as params.yaml's dataset (default: its value), "
                   "e.g. mnist-5k")
    p.add_argument("--losses", default=",".join(LOSS_NAMES), help="comma list (default: all)")
    p.add_argument("--trials", type=int, default=16,
                   help="trials per loss, complete or pruned (default %(default)s)")
    p.add_argument("--steps", type=int, default=2000,
                   help="G steps per trial, in whole epochs (default %(default)s)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="sampler and training seed")
    p.add_argument("--space", default="configs/search_space.yaml",
                   help="search-space file (default %(default)s)")
    p.add_argument("--storage", help="the studies' SQLAlchemy URL (default: "
                   "sqlite:///<repo>/tune.db); share one between workers, e.g. "
                   "postgresql+psycopg2://user:pass@host/db")
    p.add_argument("--heartbeat", type=int, default=60, help="seconds between a worker's "
                   "heartbeats; after 3 missed, its trial is failed and queued again")
    p.add_argument("--params", default="params.yaml", help="the params trials start from")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--tuned", help="tuned-params file (default: configs/tuned/<data set>.yaml)")
    p.add_argument("--out", help="figures and summary (default: reports/tune/<data set>)")
    p.add_argument("--experiment", default="dcgan-tune", help="MLflow experiment of the studies")
    p.add_argument("--no-mlflow", action="store_true", help="log the studies nowhere but "
                   "their storage")
