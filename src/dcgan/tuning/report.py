"""What a finished study leaves: each loss's best params in ``configs/tuned/<data>.yaml``,
the command that runs them over seeds through DVC, two figures and a markdown summary.

Every output says how many trials each loss had (COMPLETE + PRUNED, the budget) and at how
many G steps, since a tuned recipe means nothing without its tuning budget.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import yaml
from filelock import FileLock

from dcgan import atomic, losses
from dcgan.report import plt, save_figure  # report selects the Agg backend
from dcgan.tuning.study import counts, mask

HEADER = ("# Written by `dcgan tune` (docs/tuning.md): each loss's best params from its study,\n"
          "# with the study's budget. Review, then run them over seeds with the `run` command.\n")
SCORES = ("FD", "IS", "KID", "precision", "recall", "classes", "copies")


def _score(key: str, value: Any) -> str:
    """A table cell: near-copies in percent (the tuned file keeps the fraction), the rest as is."""
    if not isinstance(value, (int, float)):
        return "–"
    return f"{100 * value:.2f}%" if key == "copies" else f"{value:.4g}"


def best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The COMPLETE trial of lowest FD, or None."""
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    return min(done, key=lambda t: t.value) if done else None


def trials_text(c: Any, n: int, steps: int) -> str:
    """``16 trials (11 complete, 5 pruned) at 2000 G steps``."""
    return f"{c.done} of {n} trials ({c.complete} complete, {c.pruned} pruned) at {steps} G steps"


def dvc_command(dataset: str, loss: str, params: dict[str, Any], batch: int, steps: int,
                total: int) -> str:
    """``dvc exp run --queue`` of ``params`` over seeds 0,1,2 at the study's G-step budget on
    the whole data set (``total`` images: twice the half a trial trained on)."""
    d_steps = losses.get(loss).steps_per_g(params.get("train.d_steps"))
    epochs = max(1, math.ceil(steps / max(1, (total // batch) // d_steps)))
    sets = {"dataset": dataset, "loss": loss, **params, "train.batch_size": batch,
            "train.epochs": epochs}
    return ("dvc exp run --queue " + " ".join(f"-S {k}={_yaml(v)}" for k, v in sets.items())
            + " -S seed=0,1,2")


def _yaml(value: Any) -> str:
    # repr: a float's shortest exact form, so the run's params equal the tuned ones
    return "none" if value is None else (repr(value) if isinstance(value, float) else str(value))


def entry(study: optuna.Study, n: int, steps: int, batch: int, storage: str,
          command: str) -> dict[str, Any]:
    """One loss's record in the tuned file."""
    top, c = best(study), counts(study)
    return {"params": dict(top.params), "trials": {"budget": n, "complete": c.complete,
                                                   "pruned": c.pruned},
            "budget": {"g_steps": steps, "batch": batch,
                       "trained_g_steps": top.user_attrs.get("G_steps")},
            "study": {"name": study.study_name, "storage": mask(storage), "best_trial": top.number},
            "scores": {k: top.value if k == "FD" else top.user_attrs.get(k) for k in SCORES},
            "run": command}


def write_tuned(path: Path, dataset: str, loss: str, record: dict[str, Any]) -> None:
    """Add or replace ``loss``'s record in the tuned file, atomically (workers share it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock", timeout=60):
        data = yaml.safe_load(path.read_text()) if path.is_file() else None
        data = data or {"dataset": dataset, "losses": {}}
        data["losses"][loss] = record
        atomic.write_text(path, HEADER + yaml.safe_dump(data, sort_keys=False, width=10_000))


def _done(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return sorted(study.get_trials(deepcopy=False, states=states), key=lambda t: t.number)


def tuning_curve(studies: dict[str, optuna.Study], n: int, out: Path) -> None:
    """Best-so-far final FD against trials, one line per loss (pruned trials count as trials)."""
    fig = plt.figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for loss, study in studies.items():
        xs, ys, low = [], [], math.inf
        for i, t in enumerate(_done(study), 1):
            if t.state == optuna.trial.TrialState.COMPLETE:
                low = min(low, t.value)
            if low < math.inf:
                xs.append(i)
                ys.append(low)
        c = counts(study)
        ax.step(xs, ys, where="post", marker="o", ms=3,
                label=f"{loss} ({c.complete} complete + {c.pruned} pruned of {n})")
    ax.set(xlabel="trials (complete or pruned)", ylabel="best FD so far (classifier space) ↓",
           yscale="log", title=f"tuning curve: {n} trials per loss")
    _plain_axes(ax)
    ax.legend(fontsize=8)
    save_figure(fig, out)


def _plain_axes(ax: Any) -> None:
    """Whole trials on x; plain numbers (0.3, 2000), not powers of ten, on the log y axis."""
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        axis(FormatStrFormatter("%g"))


def spread(studies: dict[str, optuna.Study], n: int, out: Path) -> None:
    """Each loss's trial scores: final FD of complete trials (dots), last reported FD of
    pruned ones (crosses), on a log scale."""
    fig = plt.figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for i, (loss, study) in enumerate(studies.items()):
        trials = _done(study)
        done = [t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        cut = [t.intermediate_values[max(t.intermediate_values)] for t in trials
               if t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values]
        if done:
            ax.boxplot([done], positions=[i], widths=0.5, showfliers=False)
        ax.plot([i - 0.12 + 0.24 * (k % 5) / 4 for k in range(len(done))], done, "o", ms=4,
                color="tab:blue", label="complete: final FD" if i == 0 else None)
        ax.plot([i + 0.3] * len(cut), cut, "x", ms=5, color="tab:gray",
                label="pruned: last reported FD" if i == 0 else None)
    labels = [f"{loss}\n{c.complete} complete, {c.pruned} pruned"
              for loss, c in ((loss, counts(study)) for loss, study in studies.items())]
    ax.set_xticks(range(len(studies)), labels)
    ax.set(ylabel="FD (classifier space) ↓", yscale="log",
           title=f"trial scores per loss ({n} trials each)")
    _plain_axes(ax)
    ax.legend(fontsize=8)
    save_figure(fig, out)


def markdown(dataset: str, records: dict[str, dict[str, Any]], n: int, steps: int) -> str:
    """The summary page: one row per loss, then the commands."""
    lines = [f"# {dataset}: tuned with `dcgan tune`, {n} trials per loss at {steps} G steps",
             "", "| loss | trials | best trial | " + " | ".join(
                 "near-copies" if k == "copies" else k for k in SCORES) + " | params |",
             "|---|---|---|" + "---|" * len(SCORES) + "---|"]
    for loss, r in records.items():
        t, s = r["trials"], r["scores"]
        cells = [_score(k, s.get(k)) for k in SCORES]
        params = ", ".join(f"{k.split('.')[-1]}={v:.3g}" if isinstance(v, float) else
                           f"{k.split('.')[-1]}={_yaml(v)}" for k, v in r["params"].items())
        lines.append(f"| {loss} | {t['complete'] + t['pruned']} ({t['complete']} complete, "
                     f"{t['pruned']} pruned) | {r['study']['best_trial']} | "
                     + " | ".join(cells) + f" | {params} |")
    lines += ["", "![tuning curve](tuning_curve.png)", "", "![trial spread](trial_spread.png)",
              "", "Each best recipe over seeds, through DVC:", "", "```bash"]
    lines += [r["run"] for r in records.values()] + ["```", ""]
    return "\n".join(lines)
