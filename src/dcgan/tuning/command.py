"""``dcgan tune``: a study per loss on the user's data, every loss with the same trial budget.

Everything a user can get wrong (losses, the search space, the storage URL, the data set) is
checked before the data is prepared or anything trains. Several copies of the command,
on one machine or several sharing a database, work on the same studies.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import optuna

from dcgan.config import LOSS_NAMES, load_params
from dcgan.device import resolve_device
from dcgan.errors import UserError
from dcgan.halves import copy_check, halves
from dcgan.paths import repo_root, resolve
from dcgan.tuning import report, study as studies
from dcgan.tuning.space import load_space
from dcgan.tuning.trial import INTERVALS, NoTracker, Setup, objective
from dcgan.tuning.tuned import read_tuned, tuned_file


def default_storage() -> str:
    """``sqlite:///<repo root>/tune.db``: one file, nothing to start."""
    return f"sqlite:///{repo_root() / 'tune.db'}"


def short_name(spec: str) -> str:
    """A file name for a data set: ``mnist``, or a local source's folder (``mnist-5k``)."""
    prefix, sep, path = spec.partition(":")
    return resolve(path).name if sep and prefix in ("idx", "folder") else spec


def parse_losses(text: str) -> list[str]:
    """``bce,mse`` -> the losses, each known, none twice."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in LOSS_NAMES]
    if bad or not names or len(set(names)) != len(names):
        raise UserError(f"--losses {text!r}: " + (f"unknown loss {bad[0]!r}; " if bad else
                        "empty or repeated; ") + f"allowed: {', '.join(LOSS_NAMES)}")
    return names


def _tracker(args: argparse.Namespace, study: optuna.Study, loss: str, meta: dict,
             created: bool) -> Any:
    if args.no_mlflow:
        return NoTracker()
    from dcgan.tracking.study import StudyTracker  # mlflow only when it logs

    return StudyTracker(study, loss, meta, args.experiment, created)


def _say(loss: str, n: int):
    def say(text: str) -> None:
        print(f"tune {loss}: {text}", flush=True)

    def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        c = studies.counts(study)
        steps = max(trial.intermediate_values, default=0)
        if trial.state.name == "COMPLETE":
            what = f"FD {trial.value:.4g}"
        elif trial.user_attrs.get("surplus"):
            what = "surplus: the budget was full, nothing trained"
        elif "diverged" in trial.user_attrs:
            what = "diverged"
        else:
            what = f"FD {trial.intermediate_values.get(steps, float('nan')):.4g} at {steps} G steps"
        say(f"trial {trial.number} {trial.state.name.lower()} ({what}); "
            f"{c.done} of {n} trials done")
    return say, after


class Prepared:
    """The halves and their classifier, made on first use: a worker that finds its studies
    complete (a rerun) prepares nothing."""

    def __init__(self, args: argparse.Namespace, dataset: str, params: Any, tmp: Path):
        self.args, self.dataset, self.params, self.tmp = args, dataset, params, tmp
        self.setup: Setup | None = None

    def __call__(self) -> Setup:
        if self.setup is None:
            a, device = self.args, resolve_device(self.args.device)
            data = halves(self.dataset, self.tmp, self.params, device)
            self.setup = Setup(data, copy_check(data, device), Path(a.params), a.steps, a.batch,
                               a.seed, device, self.tmp)
        return self.setup


def tune_loss(args, setup: Prepared, loss: str, dims, storage,
              dataset: str) -> tuple[optuna.Study, Any]:
    """Work on ``loss``'s study until it has its trials: the study and its tracker."""
    name = studies.study_name(short_name(dataset), loss, args.steps, args.batch, args.seed, dims)
    interval = max(1, args.steps // INTERVALS)
    pruner = studies.pruner(interval, args.steps)
    try:  # exactly one worker creates the study (and its MLflow parent run)
        study = optuna.create_study(study_name=name, storage=storage, direction="minimize",
                                    pruner=pruner)
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study, created = optuna.load_study(study_name=name, storage=storage, pruner=pruner), False
    meta = {"dataset": dataset, "loss": loss, "trials": args.trials, "g_steps": args.steps,
            "batch": args.batch, "seed": args.seed, "space": str(args.space)}
    for key, value in meta.items():
        if key not in study.user_attrs:
            study.set_user_attr(key, value)
    tracker = _tracker(args, study, loss, meta, created)
    say, after = _say(loss, args.trials)
    c = studies.counts(study)
    say(f"study {name}: {c.done} of {args.trials} trials done")
    studies.work(study, objective(setup, loss, dims, tracker,
                                  studies.budget_guard(study, args.trials)),
                 args.trials, args.seed, args.heartbeat, say, [after], prepare=setup)
    return study, tracker


def run(args: argparse.Namespace) -> None:
    """``dcgan tune``: every loss's study, then the tuned file, figures and DVC commands."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per trial is ours
    params_file = Path(args.params)
    dataset = args.dataset or load_params(params_file).dataset
    params = load_params(params_file, {"dataset": dataset})  # a bad spec fails here
    losses = parse_losses(args.losses)
    if args.trials < 1 or args.steps < 1 or args.batch < 1:
        raise UserError("--trials, --steps and --batch must be at least 1")
    space = {loss: load_space(args.space, params_file, {"loss": loss, "dataset": dataset})
             for loss in losses}  # every mistake in the file, before any data or training
    url = args.storage or default_storage()
    storage = studies.open_storage(url, args.heartbeat)
    resolve_device(args.device)  # a missing GPU fails here, not after the data
    done: dict[str, optuna.Study] = {}
    with tempfile.TemporaryDirectory(prefix="dcgan-tune-") as tmp:
        setup = Prepared(args, dataset, params, Path(tmp))
        for loss in losses:
            done[loss], tracker = tune_loss(args, setup, loss, space[loss], storage, dataset)
            finish(args, done, loss, tracker, url, dataset)


def finish(args, done: dict[str, optuna.Study], loss: str, tracker: Any, url: str,
           dataset: str) -> None:
    """``loss``'s record in the tuned file, the figures of every loss so far, the command."""
    study, n = done[loss], args.trials
    c = studies.counts(study)
    top = report.best(study)
    if top is None:
        print(f"tune {loss}: {report.trials_text(c, n, args.steps)}, none complete: no best "
              "params (every trial pruned or diverged); widen the search space", file=sys.stderr)
        return
    command = report.dvc_command(dataset, loss, dict(top.params), args.batch, args.steps,
                                 study.user_attrs["images"])
    tuned = Path(args.tuned) if args.tuned else tuned_file(short_name(dataset))
    report.write_tuned(tuned, dataset, loss, report.entry(study, n, args.steps, args.batch,
                                                          url, command))
    out = Path(args.out or Path("reports/tune") / short_name(dataset))
    out.mkdir(parents=True, exist_ok=True)
    report.tuning_curve(done, n, out / "tuning_curve.png")
    report.spread(done, n, out / "trial_spread.png")
    records = {k: v for k, v in read_tuned(tuned).items() if k in done}
    from dcgan import atomic

    atomic.write_text(out / "tune.md", report.markdown(dataset, records, n, args.steps))
    tracker_finish = getattr(tracker, "finish", None)
    if tracker_finish:
        tracker_finish(records[loss], [out / "tuning_curve.png", out / "trial_spread.png",
                                       out / "tune.md", tuned])
        if problem := tracker.problem():
            print(f"warning: {problem}", file=sys.stderr)
    print(f"tune {loss}: {report.trials_text(c, n, args.steps)}; best trial {top.number}: "
          f"FD {top.value:.4g}, IS {top.user_attrs.get('IS', float('nan')):.4g} -> {tuned}, "
          f"{out}\n  {command}", flush=True)
