"""The GPU check's markdown: one table per section, the issue's targets, the sections last."""

from __future__ import annotations

from typing import Any

TRAINING = ("train-eager", "train-default", "train-reduce-overhead")


def slug(name: str) -> str:
    """A device name as a file-name part: ``NVIDIA H100 80GB HBM3`` -> ``nvidia-h100-80gb-hbm3``."""
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def _f(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _status(row: dict) -> str:
    return row["status"] if row["status"] == "ok" else f"{row['status']}: {row.get('error', '')}"


def _rows(result: dict, name: str) -> list[dict]:
    return result["sections"].get(name, {}).get("rows", [])


def training_rows(result: dict) -> list[dict]:
    """Every training row of the three training sections, in the order they ran."""
    return [r for name in TRAINING for r in _rows(result, name)]


def _training(result: dict) -> list[str]:
    cfg = result["config"]
    lines = [f"## Training (batch {cfg['batch']}, 2 epochs: the first compiles, the second is "
             "timed; full epoch = full-set images / the steady img/s)", ""]
    rows = []
    for r in training_rows(result):
        rows.append([r["set"], r["loss"], r["mode"], r.get("dtype", "fp32"),
                     _f(r.get("images_per_s"), 0), _f(r.get("ratio"), 2, "x"),
                     _f(r.get("steady_epoch_s"), 3), _f(r.get("full_epoch_s"), 2),
                     _f(r.get("first_minus_steady_s"), 1), _f(r.get("peak_gib"), 2), _status(r)])
    lines += _table(["set", "loss", "mode", "dtype", "img/s", "x ref", "steady epoch s",
                     "full epoch s", "first - steady s", "peak GiB", "status"], rows)
    sizes = ", ".join(f"{n}: {s['images']} of {s['full']} images"
                      for n, s in cfg["sets"].items())
    return lines + ["", f"Measured on {sizes} (full epoch extrapolated where fewer); the "
                    "reference loop (bench.py: DataLoader, fp32, eager, `.item()` per step) "
                    "runs in each section's own process. `first - steady` is the compile time "
                    "for compiled modes (warm-up for eager); later rows of a set reuse "
                    "inductor's on-disk cache, so their compile is cheaper than a cold run's.", ""]


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[value]


def _quality(result: dict) -> list[str]:
    q = result["config"]["quality"]
    section = result["sections"].get("quality", {})
    summary = (section.get("summary") or {}).get("summary", {})
    rows = []
    for path in q["paths"]:
        runs = [r for r in section.get("rows", []) if r.get("path") == path]
        ok = [r for r in runs if r["status"] == "ok"]
        s = summary.get(path, {})
        rows.append([path, ", ".join(f"{r['frechet_distance']:.4g}" for r in ok) or "-",
                     f"{s['mean']:.4g} ± {s['std']:.3g}" if s else "-",
                     _f(sum(r["images_per_second"] for r in ok) / len(ok), 0) if ok else "-",
                     _yes_no(s.get("within_reference_spread")),
                     "; ".join(_status(r) for r in runs if r["status"] != "ok") or "ok"])
    skipped = [r for r in section.get("rows", []) if r["status"] == "skipped"]
    return [f"## Quality: classifier-space FD on {q['data']} ({q['seeds']} seeds, {q['epochs']} "
            f"epoch(s), batch {q['batch']}; fast = params.yaml as is, reference = fp32 eager "
            "contiguous" + (", compiled = fast + train.compile=default" if "compiled" in q["paths"]
                            else "") + ")", ""] + _table(
        ["path", "FD per seed", "mean ± std", "img/s", "within fp32 spread", "status"], rows) + (
        [f"{len(skipped)} run(s) skipped: section time budget"] if skipped else []) + [""]


def _tests(result: dict) -> list[str]:
    section = result["sections"].get("cuda-tests", {})
    rows = [[r["test"], r["status"], r.get("error", "")] for r in section.get("rows", [])]
    return ["## CUDA tests (`pytest -m cuda`)", "", (section.get("summary") or {}).get("line", ""),
            ""] + (_table(["test", "outcome", "message"], rows) + [""] if rows else [])


def _metrics(result: dict) -> list[str]:
    rows = [[r["samples"], _f(r["seconds"], 2), f"{r['warmup_samples']} in "
             f"{r['warmup_seconds']:.2f} s"] for r in _rows(result, "metrics") if r["status"] == "ok"]
    return ["## Classifier metrics (sampling + IS, FD, KID, precision/recall)", ""] + _table(
        ["samples", "seconds", "warm-up first"], rows) + [""]


SPEED_TARGETS = (  # label, row key, set, better is higher, limit, format
    (">= 10x the reference loop's img/s, 28x28", "ratio", "28x28", True, 10, "{:.1f}x"),
    ("60k-image 28x28 epoch <= 1 s", "full_epoch_s", "28x28", False, 1, "{:.2f} s"),
    ("16k-image 64x64 epoch <= 2 s", "full_epoch_s", "64x64", False, 2, "{:.2f} s"))


def targets(result: dict) -> list[dict]:
    """The issue's targets read from the rows; for speed, the best bce row of any mode."""
    bce = [r for r in training_rows(result) if r["status"] == "ok" and r["loss"] == "bce"
           and r["mode"] != "reference loop"]
    out = []
    for label, key, set_name, higher, limit, fmt in SPEED_TARGETS:
        rows = [r for r in bce if r["set"] == set_name and r.get(key) is not None]
        if not rows:
            out.append({"target": label, "measured": "not measured", "met": None})
            continue
        r = (max if higher else min)(rows, key=lambda row: row[key])
        out.append({"target": label, "measured": f"{fmt.format(r[key])} ({r['mode']})",
                    "met": r[key] >= limit if higher else r[key] <= limit})
    m = [r for r in _rows(result, "metrics") if r["status"] == "ok"]
    out.append({"target": "classifier metrics for 10k samples <= 10 s",
                "measured": f"{m[0]['seconds']:.2f} s for {m[0]['samples']}" if m else "not measured",
                "met": m[0]["seconds"] <= 10 if m and m[0]["samples"] >= 10_000 else None})
    q = (result["sections"].get("quality", {}).get("summary") or {}).get("summary", {})
    for path, s in q.items():
        if path != "reference" and "reference" in q:
            ref = q["reference"]
            out.append({"target": f"{path} FD within the fp32 seed-to-seed spread",
                        "measured": f"{s['mean']:.4g} vs {ref['mean']:.4g} ± {ref['std']:.3g}",
                        "met": s.get("within_reference_spread")})
    return out


def markdown(result: dict) -> str:
    """The whole report; the sections table comes last, so a truncated log keeps it."""
    env = {r["key"]: r["value"] for r in _rows(result, "env")}
    lines = [f"# GPU check: {result['device']}, {result['date']} ({result['size']} sizes)", "",
             f"`{result['command']}`: torch {env.get('torch', '?')}, CUDA runtime "
             f"{env.get('cuda_runtime', '-')}, cuDNN {env.get('cudnn', '-')}, "
             f"{result['total_s']:.0f} s of a {result['budget_s']:.0f} s budget", ""]
    if result["size"] == "tiny":
        lines += ["Tiny sizes: a smoke test of the check itself, not a measurement.", ""]
    if result["config"]["compile_disabled"]:
        lines += ["torch.compile disabled (TORCH_COMPILE_DISABLE=1): the `default` and "
                  "`reduce-overhead` rows ran eagerly.", ""]
    lines += ["## Environment", ""] + _table(
        ["key", "value"], [[r["key"], r["value"]] for r in _rows(result, "env")]) + [""]
    lines += _tests(result) + _training(result) + _quality(result) + _metrics(result)
    lines += ["## Targets (issue 16)", ""] + _table(
        ["target", "measured", "met"],
        [[t["target"], t["measured"], _yes_no(t["met"])]
         for t in result["targets"]]) + [""]
    lines += ["## Sections", ""] + _table(
        ["section", "status", "seconds (budget)", "summary"],
        [[name, s["status"], f"{s['seconds']:.0f} ({s['budget_s']:.0f})", s["note"]]
         for name, s in result["sections"].items()])
    return "\n".join(lines) + "\n"
