"""One trial of a study: the sampled params trained at the fixed G-step budget on one half of
the data (the library's own loop, :mod:`dcgan.halves`), the classifier-space FD against the
other half reported per interval (the pruner's input), then the final scores.

The objective is that FD (lower is better); IS, KID, precision, recall, classes and
near-copies are recorded as the trial's user attributes. A trial whose training leaves the
rails is pruned, not failed: it counts towards the loss's budget, and retrying the same
params would diverge again.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import optuna
import torch

from dcgan.halves import Halves, budget_params, scores, train_one
from dcgan.images import save_grid
from dcgan.memorisation import CopyCheck
from dcgan.scoring import fd_scorer, samples_of, take
from dcgan.training import EpochEnd, Hook
from dcgan.training.divergence import Diverged
from dcgan.tuning.space import Dimension

WORKER = f"{socket.gethostname()}:{os.getpid()}"
INTERVALS = 8  # FD reports per trial: the pruner's input
RECORDED = ("IS", "KID", "precision", "recall", "classes", "copies")


class NoTracker:
    """What a study logs a trial to when it logs nowhere (see dcgan.tracking.study)."""

    def start_trial(self, number: int, params: dict[str, Any]) -> None:
        """A trial began with ``params``."""

    def interval(self, g_steps: int, fd: float) -> None:
        """One point of the trial's FD curve."""

    def end_trial(self, state: str, result: dict[str, Any], grid: Path | None) -> None:
        """The trial ended as ``state`` (COMPLETE, PRUNED) with its user attributes."""


class IntervalFD(Hook):
    """Every ``every`` epochs and at the last, the classifier-space FD of what the run samples
    from, passed to ``report(g_steps, fd)`` (which may raise ``optuna.TrialPruned``)."""

    def __init__(self, scorer: Callable[[torch.nn.Module], float], every: int,
                 report: Callable[[int, float], None]):
        self.scorer, self.every, self.report = scorer, every, report

    def after_epoch(self, run: Any, end: EpochEnd) -> None:
        if end.epoch % self.every and end.epoch != run.epochs:
            return
        self.report(end.epoch * run.iters, float(self.scorer(run.sampler())))


@dataclass
class Setup:
    """What every trial of one worker shares: the halves, the budget and where to train."""

    data: Halves
    check: CopyCheck
    params_file: Path
    steps: int  # G steps per trial (whole epochs: at least this many)
    batch: int
    seed: int  # training seed of every trial
    device: torch.device
    work: Path  # the worker's scratch folder (trial grids until logged)
    intervals: int = INTERVALS
    eval_samples: int = 1000  # samples per interval FD (the final FD uses the whole half)

    def scorer(self, nz: int) -> Callable[[torch.nn.Module], float]:
        """The interval FD: ``eval_samples`` samples against as many scoring-half images."""
        reference = take(self.data.score, self.eval_samples, self.seed)
        return fd_scorer(self.data.classifier, reference, nz, self.device, self.seed + 1)


def final_scores(setup: Setup, trainer: Any) -> tuple[dict[str, Any], torch.Tensor]:
    """The benchmark's scores of ``len(scoring half)`` samples, and the samples."""
    data, device = setup.data, setup.device
    fake = samples_of(trainer.sampler(), len(data.score), trainer.p.model.nz, device, seed=1)
    s = scores(data.classifier, fake, data.score, device)
    copies, _ = setup.check.score(fake)
    s["copies"] = copies["pixels"]["share"]
    return s, fake


def objective(setup: Callable[[], Setup], loss: str, dims: list[Dimension],
              tracker: Any = None, guard: Callable[[optuna.Trial], None] = lambda trial: None):
    """The Optuna objective of ``loss``'s study; ``guard(trial)`` runs first (the budget),
    ``setup()`` gives the halves (prepared on the first trial that needs them)."""
    tracker = tracker or NoTracker()

    def run(trial: optuna.Trial) -> float:
        guard(trial)
        trial.set_user_attr("worker", WORKER)  # which process ran it (several may share a study)
        ready = setup()
        if "images" not in trial.study.user_attrs:  # the DVC command's epochs need it
            trial.study.set_user_attr("images", ready.data.total)
        sampled = {d.key: d.suggest(trial) for d in dims}
        tracker.start_trial(trial.number, sampled)
        try:
            value, attrs, grid = _train(ready, trial, loss, sampled, tracker)
        except optuna.TrialPruned:
            tracker.end_trial("PRUNED", dict(trial.user_attrs), None)
            raise
        tracker.end_trial("COMPLETE", attrs, grid)
        return value

    return run


def _train(setup: Setup, trial: optuna.Trial, loss: str, sampled: dict[str, Any],
           tracker: Any) -> tuple[float, dict[str, Any], Path]:
    overrides = {**sampled, "loss": loss, "seed": setup.seed, "train.device": str(setup.device)}
    params = budget_params(setup.params_file, setup.data.prepared, overrides, setup.steps,
                           setup.batch)
    curve: list[list[float]] = []

    def report(g_steps: int, fd: float) -> None:
        curve.append([g_steps, fd])
        trial.set_user_attr("fd_curve", curve)
        trial.report(fd, g_steps)
        tracker.interval(g_steps, fd)
        if trial.should_prune():
            raise optuna.TrialPruned(f"FD {fd:.4g} at {g_steps} G steps")

    every = max(1, params.train.epochs // setup.intervals)
    start = time.perf_counter()
    try:
        trainer = train_one(params, setup.data.prepared,
                            [IntervalFD(setup.scorer(params.model.nz), every, report)])
    except Diverged as err:
        trial.set_user_attr("diverged", str(err))
        raise optuna.TrialPruned(f"diverged: {err}") from None
    s, fake = final_scores(setup, trainer)
    attrs = {"G_steps": trainer.iters * trainer.epoch, "wall_s": round(time.perf_counter() - start, 1),
             **{k: s[k] for k in RECORDED}, "fd_curve": curve}
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    grid = setup.work / f"{loss}-trial_{trial.number:03d}.png"
    save_grid(fake[:64], grid)
    return float(s["FD"]), attrs, grid
