"""Headline numbers for ``metrics/`` (what `dvc metrics show` prints); everything else as details.

`dvc metrics show` prints one table: a row per metrics file and a column per key found in any
of them. So each file keeps a few short numeric keys, and the evaluation writes one file per
row (``metrics/eval/generator.json``, ``no_ema`` when the EMA is on, ``best``, ``floor``, ``noise``) with the same keys: the
rows share their columns and the table reads like the report's. Strings, histograms, counts,
timings and the Inception numbers go to a details JSON beside the stage's outputs (and to
MLflow); headline floats keep 4 significant digits, the details full precision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dcgan import atomic

ROWS = ("generator", "no_ema", "best", "floor", "noise")  # the evaluation's candidates, report order
# Every score of a row by its short name -> where it sits in the row (dcgan.evaluation); copies:
# the share of near-copies of training images (dcgan.memorisation), the real data's own rate
# in the floor row. MLflow and the comparison show them all under these names.
ALL_SCORES = {"IS": ("classifier", "inception_score", "mean"),
              "FD": ("classifier", "frechet_distance"), "KID": ("classifier", "kid", "mean"),
              "precision": ("classifier", "precision"), "recall": ("classifier", "recall"),
              "classes": ("classifier", "classes_covered"), "copies": ("copies", "pixels", "share"),
              "IS Inception": ("inception", "inception_score_mean"), "FID": ("inception", "fid"),
              "KID Inception": ("inception", "kid_mean")}
# The headline in metrics/eval: KID and the classes covered pushed the table past 120 columns
# (they are in the details, MLflow, the summary and the comparison).
SCORES = {k: ALL_SCORES[k] for k in ("IS", "FD", "precision", "recall", "copies")}


def _short(value: Any) -> int | float:
    """An int as is; a float to 4 significant digits (a headline, not a record)."""
    return value if isinstance(value, int) else float(f"{value:.4g}")


def _dig(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path``, or None where the row has no such number."""
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def row_scores(row: dict[str, Any], names: dict[str, tuple[str, ...]] = ALL_SCORES) -> dict[str, Any]:
    """The scores of one evaluated row by short name; those it lacks are left out (unlabelled
    data has no class scores, noise no copies, a run without InceptionV3 no FID)."""
    found = {name: _dig(row, path) for name, path in names.items()}
    return {name: value for name, value in found.items() if value is not None}


def _eval(result: dict[str, Any]) -> dict[str, dict[str, int | float]]:
    """One headline per candidate row: classifier-space scores, and the best row's epoch."""
    rows = {}
    for row in (r for r in ROWS if r in result):
        rows[row] = {name: _short(v) for name, v in row_scores(result[row], SCORES).items()}
    if "best" in rows:
        rows["best"]["epoch"] = result["best"]["epoch"]
    for numbers in rows.values():  # whose scores: a killed experiment's row can hold its
        numbers["exp"] = result.get("exp", "workspace")  # baseline's files (docs/tracking.md)
    return rows


def headline(kind: str, result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers of ``result`` that ``metrics/<kind>`` holds.

    Args:
        kind: ``"train"`` (``Session.metrics()``: final-epoch losses, the epoch they come
            from, named ``epoch`` like the best row's, and the DVC experiment that trained
            them, ``exp``) or ``"eval"`` (``{row: {IS, FD, precision, recall, copies[,
            epoch], exp}}``, ``exp``: the DVC experiment that scored them).
        result: everything the stage measured (what goes to the details JSON).
    """
    if kind == "train":  # exp: whose numbers these are (a killed queued experiment shows
        # its baseline's files; they name the baseline, not the experiment in that row)
        return {"epoch": result["epochs"], "d_loss": _short(result["d_loss"]),
                "g_loss": _short(result["g_loss"]), "exp": result.get("exp", "workspace")}
    if kind == "eval":
        return _eval(result)
    raise ValueError(f"unknown kind {kind!r}; expected train or eval")


def write(kind: str, result: dict[str, Any], metrics: str | Path, details: str | Path) -> None:
    """Write ``result`` whole to ``details`` and its headline to ``metrics``, atomically.

    For ``"eval"`` ``metrics`` is a folder holding one ``<row>.json`` per candidate.
    """
    atomic.write_json(details, result)
    top = headline(kind, result)
    if kind != "eval":
        atomic.write_json(metrics, top)
        return
    with atomic.output_dir(metrics) as tmp:
        for row, numbers in top.items():
            atomic.write_json(tmp / f"{row}.json", numbers)
