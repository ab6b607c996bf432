"""A loss's study in Optuna's database storage, worked on by one process or many.

Storage is any SQLAlchemy URL (a sqlite file by default: nothing to start; PostgreSQL for
several machines). Workers share a study through it: a trial number is handed out by the
database, so no trial runs twice. Heartbeats mark a killed worker's trial failed after the
grace period and queue its params again (``RetryHeartbeatStaleTrialCallback``), so rerunning the
command continues the study. The budget counts COMPLETE and PRUNED trials: every loss gets
exactly ``n`` of them however many workers run, and a worker stops when they are done.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from typing import Any, Callable, NamedTuple

import optuna
from optuna.trial import TrialState

from dcgan.errors import UserError
from dcgan.tuning.space import Dimension

DONE = (TrialState.COMPLETE, TrialState.PRUNED)  # what the budget counts
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class Surplus(Exception):
    """A trial started past the budget (two workers asked at once); recorded as FAIL."""


class Counts(NamedTuple):
    complete: int
    pruned: int
    running: int
    waiting: int
    failed: int

    @property
    def done(self) -> int:
        return self.complete + self.pruned


def counts(study: optuna.Study) -> Counts:
    """The study's trials by state."""
    states = [t.state for t in study.get_trials(deepcopy=False)]
    return Counts(*(states.count(s) for s in (TrialState.COMPLETE, TrialState.PRUNED,
                                               TrialState.RUNNING, TrialState.WAITING,
                                               TrialState.FAIL)))


def open_storage(url: str, heartbeat: int) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at ``url`` with heartbeats every ``heartbeat`` seconds; a
    worker silent for 3 heartbeats has its trial failed and queued again (up to 3 times)."""
    from dcgan.tracking.store import creation_lock

    sqlite = url.startswith("sqlite")
    # sqlite: several local workers write one file; wait for its lock instead of failing
    engine = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
    for attempt in range(3):
        try:
            with creation_lock(url):  # workers started together race to create the schema
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine, heartbeat_interval=heartbeat,
                    grace_period=3 * heartbeat, heartbeat_stale_trial_callback=(
                        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)))
        except Exception as err:  # bad URL, server down, missing driver: one line, the cause
            raced = any(w in str(err) for w in ("already exists", "UNIQUE", "duplicate key"))
            if raced and attempt < 2:
                time.sleep(1 + attempt)  # another machine's worker was creating the schema
                continue
            fix = ("install the driver (pip install 'dcgan[postgres]') and name it in the URL: "
                   "postgresql+psycopg2://user:pass@host/db" if isinstance(err, ImportError)
                   else "check --storage (an SQLAlchemy URL, e.g. sqlite:///tune.db or "
                   "postgresql+psycopg2://user:pass@host/db)")
            raise UserError(f"study storage {mask(url)}: {_cause(err)}; {fix}") from None


def _cause(err: BaseException) -> str:
    from dcgan.tracking.store import root_cause

    inner = root_cause(err)
    return f"{type(inner).__name__}: {(str(inner).strip().splitlines() or [''])[0]}"


def mask(url: str) -> str:
    """``url`` without its password (for outputs and tags)."""
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, cred = head.partition("//")
    return f"{scheme}//{cred.split(':', 1)[0]}:***@{tail}"


def study_name(data: str, loss: str, steps: int, batch: int, seed: int,
               dims: list[Dimension]) -> str:
    """One study per data set, loss, budget, seed and search space (its hash): editing the
    space or the budget starts a new study instead of mixing trials of two."""
    space = json.dumps([[d.key, d.low, d.high, d.log, list(d.choices)] for d in dims])
    digest = hashlib.sha256(space.encode()).hexdigest()[:8]
    return f"{data}-{loss}-{steps}steps-b{batch}-seed{seed}-space{digest}"


def sampler(seed: int, number: int, n_trials: int) -> optuna.samplers.TPESampler:
    """TPE seeded per trial (``seed`` and the trials so far): a resumed or restarted worker
    draws what an uninterrupted one would, not trial 0's params again. A third of the
    budget (at least 2) is random start-up trials."""
    return optuna.samplers.TPESampler(seed=seed * 100_003 + number,
                                      n_startup_trials=max(2, n_trials // 3))


def pruner(interval: int, steps: int) -> optuna.pruners.BasePruner:
    """Hyperband over successive-halving brackets on the per-interval FD (steps: G steps)."""
    return optuna.pruners.HyperbandPruner(min_resource=interval, max_resource=steps,
                                          reduction_factor=3)


def budget_guard(study: optuna.Study, n: int) -> Callable[[optuna.Trial], None]:
    """Refuse a trial when ``n`` trials numbered before it are done or running (two workers
    that asked at once): it ends FAIL, marked ``surplus``, and trains nothing."""
    def guard(trial: optuna.Trial) -> None:
        ahead = [t for t in study.get_trials(deepcopy=False, states=(*DONE, TrialState.RUNNING))
                 if t.number < trial.number]
        if len(ahead) >= n:
            trial.set_user_attr("surplus", True)
            study.stop()
            raise Surplus(f"trial {trial.number}: the study has its {n} trials")
    return guard


def work(study: optuna.Study, objective: Callable, n: int, seed: int, heartbeat: int,
         say: Callable[[str], None], callbacks: list[Any] = (),
         prepare: Callable[[], Any] = lambda: None) -> Counts:
    """Run trials of ``study`` until ``n`` are COMPLETE or PRUNED (other workers' included);
    while the last ones run elsewhere, wait for them (or their heartbeats to go stale).
    ``prepare()`` runs before the first trial, outside it: a data error fails no trial."""
    waited = False
    while True:
        optuna.storages.fail_stale_trials(study)  # a killed worker's trial: FAIL, queued again
        c = counts(study)
        if c.done >= n:
            return c
        if c.done + c.running >= n:
            if not waited:
                say(f"{c.running} trial(s) running elsewhere; waiting for them (a killed "
                    f"worker's trial is queued again after {3 * heartbeat} s)")
                waited = True
            time.sleep(heartbeat)
            continue
        prepare()
        study.sampler = sampler(seed, len(study.get_trials(deepcopy=False)), n)
        study.optimize(objective, n_trials=1, catch=(Surplus,), callbacks=[
            optuna.study.MaxTrialsCallback(n, states=DONE), *callbacks])
