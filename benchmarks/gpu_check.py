"""One prepared check that proves and measures the CUDA path: run it first whenever a GPU is at hand.

    benchmarks/gpu_check.sh             # on the GPU machine (PYTHONPATH=src, no install step)
    benchmarks/gpu_check.sh --tiny      # every section at a tiny size on CPU (the CI smoke run)
    benchmarks/gpu_check.sh --only train-default,quality --budget 240   # a rerun of some sections

Each section runs in a process of its own under a time budget (they sum to under 8 minutes):
a section that crashes, raises or overruns is recorded as FAILED with its one-line error and
the next one starts. Needs no torch itself; writes JSON, markdown and the log to
benchmarks/results/gpu-check-<device>-<date>.* and, when $OUT is set, to $OUT; prints the
markdown with the sections table last. benchmarks/NOTES.md says what each row means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import gpu_report

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "src"))
from dcgan import atomic  # noqa: E402  (torch-free: this process never imports torch)
from dcgan.data.sources import sample_dir  # noqa: E402  (torch-free too)
# name -> seconds. Env ends by its own plus GRACE_S, the rest by the sum of theirs (410) plus
# GRACE_S: under 8 minutes, so a 15-minute GPU lease has room for a start and a rerun.
BUDGETS = {"env": 15, "cuda-tests": 45, "train-eager": 70, "train-default": 120,
           "train-reduce-overhead": 75, "quality": 80, "metrics": 20}
GRACE_S = 20  # past its budget a section is killed (its soft deadline is the budget itself)
LOSSES = ("bce", "mse", "hinge", "wgan-gp")
# Compiled rows by priority: bce on both sets first, then the losses whose G and D graphs are
# bce's (inductor's cache makes them cheap), WGAN-GP's layer-normed critic last
PRIORITY = [("28x28", "bce"), ("64x64", "bce"), ("28x28", "mse"), ("28x28", "hinge"),
            ("64x64", "mse"), ("64x64", "hinge"), ("28x28", "wgan-gp"), ("64x64", "wgan-gp")]
# Full sizes train bench.DCGAN (the write-ups' DCGAN, the issue's ngf = ndf = 64) in both loops
TINY_MODEL = {"model.ngf": 8, "model.ndf": 8, "model.nz": 16, "model.extra_layers": 0,
              "model.g_upsample": "transpose"}


def config(size: str, data: Path) -> dict:
    """Sizes of every section: ``full`` (the issue's) or ``tiny`` (a CPU smoke run)."""
    full = size == "full"
    sets = {"28x28": {"images": 60_000 if full else 320, "full": 60_000, "nc": 1, "size": 28},
            "64x64": {"images": 16_000 if full else 160, "full": 16_000, "nc": 3, "size": 64}}
    eager = [(s, loss) for s in sets for loss in LOSSES]
    compiled = PRIORITY if full else [("28x28", "bce")]
    tiny_data = {**TINY_MODEL, "classifier.width": 4, "classifier.epochs": 1,
                 "classifier.min_steps": 0, "preprocess.max_images": 320}
    return {
        "size": size, "batch": 128 if full else 32, "model": {} if full else TINY_MODEL,
        # A cold inductor compile costs ~25 s on a 2-core CPU, more than the rest of a tiny
        # run: tiny runs the compiled rows' code eagerly (tests/test_train.py compiles on CPU)
        "compile_disabled": not full,
        "sets": sets, "reference_epochs": 1,
        "plan": {"eager": eager, "default": compiled, "reduce-overhead": compiled},
        # the seconds a row needs left to start, until one of its set has run (then its cost);
        # low, so the first compiled row starts: the kill at budget + GRACE_S bounds it
        "guess_s": {"eager": 10, "compiled": 20} if full else {"eager": 2, "compiled": 5},
        "quality": {"data": str(data), "seeds": 3, "epochs": 5 if full else 1,
                    "batch": 64 if full else 32, "common": {} if full else tiny_data,
                    "paths": ["fast", "reference", "compiled"] if full else ["fast", "reference"],
                    "run_guess_s": 20 if full else 2},
        "metrics": {"samples": 10_000 if full else 200, "warmup": 1_000 if full else 50},
    }


def _child_env(extra: dict | None = None) -> dict:
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **(extra or {})}


def _run(cmd: list[str], budget: float, log: Path,
         env: dict | None = None) -> tuple[int | None, float, str]:
    """Run ``cmd`` into ``log``; kill its process group past the budget. (rc or None, s, tail)."""
    start = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=_child_env(env), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc: int | None = proc.wait(timeout=budget + GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = None
    text = log.read_text(encoding="utf-8", errors="replace").replace("\r", "\n")
    tail = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "")
    return rc, time.monotonic() - start, tail[:300]


def _section(rows: list[dict], summary: dict | None, error: str | None, seconds: float,
             budget: float) -> dict:
    failed = [r for r in rows if r.get("status") == "FAILED"]
    skipped = sum(r.get("status") == "skipped" for r in rows)
    if error is None and failed:
        first = failed[0]
        error = f"{len(failed)} of {len(rows)} rows FAILED (first: {first.get('error', '')})"
    note = error or f"{sum(r.get('status') == 'ok' for r in rows)} ok" + (
        f", {skipped} skipped (time budget)" if skipped else "")
    return {"status": "FAILED" if error else "ok", "seconds": seconds, "budget_s": budget,
            "rows": rows, "summary": summary, "error": error, "note": note}


def run_section(name: str, cfg_path: Path, budget: float, tmp: Path, env: dict) -> dict:
    """One section of gpu_sections.py in its own process, with ``env`` added to its environment."""
    rows_path = tmp / f"{name}.jsonl"
    rc, seconds, tail = _run([sys.executable, str(HERE / "gpu_sections.py"), name, str(cfg_path),
                              str(rows_path), str(budget)], budget, tmp / f"{name}.log", env)
    records = [json.loads(line) for line in rows_path.read_text().splitlines()] \
        if rows_path.is_file() else []
    rows = [r["row"] for r in records if "row" in r]
    summary = next((r["summary"] for r in records if "summary" in r), None)
    error = next((r["error"] for r in records if "error" in r), None)
    if rc is None:
        error = f"killed after {seconds:.0f} s (over its {budget:.0f} s budget); {len(rows)} rows kept"
    elif rc != 0 and error is None:
        error = f"exited with code {rc}: {tail}"
    return _section(rows, summary, error, seconds, budget)


def run_tests(budget: float, tmp: Path, env: dict) -> dict:
    """``pytest -m cuda`` over tests/: counts, failures and skip reasons from its JUnit XML."""
    xml = tmp / "cuda-tests.xml"
    # addopts emptied: pyproject's `-n auto` needs pytest-xdist, which the GPU image lacks
    rc, seconds, tail = _run([sys.executable, "-m", "pytest", "-o", "addopts=", "-m", "cuda",
                              "-q", "-rfEs", "--strict-markers", "-p", "no:cacheprovider",
                              f"--junitxml={xml}", str(REPO / "tests")],
                             budget, tmp / "cuda-tests.log", env)
    if rc is None or not xml.is_file():
        why = "killed at its time budget" if rc is None else f"exited with code {rc}: {tail}"
        return _section([], None, why, seconds, budget)
    rows, counts = [], {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for case in ET.parse(xml).iter("testcase"):
        test = f"{case.get('classname', '')}.{case.get('name', '')}".removeprefix("tests.")
        outcome = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        kind = {"failure": "failed"}.get(outcome.tag, outcome.tag) if outcome is not None else "passed"
        counts[kind] += 1
        if outcome is not None:
            message = (outcome.get("message") or outcome.text or "").strip().splitlines()
            rows.append({"test": test, "status": "FAILED" if kind in ("failed", "error") else kind,
                         "error": (message[0] if message else "")[:300]})
    line = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no tests"
    error = None if rc == 0 and sum(counts.values()) else f"pytest exit code {rc}: {line}"
    done = _section(rows, {"line": line, **counts}, error, seconds, budget)
    done["note"] = error or line
    return done


def budgets(selected: list[str], total: float | None, tiny: bool) -> dict[str, float]:
    """Each section's seconds: the defaults, scaled so the selected ones sum to ``total``
    (default: the GPU budgets; 4x those for a tiny run, which a busy CI machine may slow)."""
    default = sum(BUDGETS[n] for n in selected) * (4 if tiny else 1)
    scale = (total or default) / sum(BUDGETS[n] for n in selected)
    return {n: BUDGETS[n] * scale for n in selected}


def _data_default() -> Path:
    """The built-in mnist-5k sample: tracked in the package, so it travels with the checkout."""
    return sample_dir("mnist-5k")


def _write(result: dict, text: str, log: str, results: Path) -> list[Path]:
    """JSON, markdown and the sections' log, to ``results`` and ``$OUT``; returns the paths."""
    stem = f"gpu-check-{result['slug']}-{result['date']}" + ("-tiny" if result["size"] == "tiny" else "")
    dirs = [results] + ([Path(os.environ["OUT"])] if os.environ.get("OUT") else [])
    written = []
    for folder in dirs:
        folder.mkdir(parents=True, exist_ok=True)
        atomic.write_json(folder / f"{stem}.json", result)
        atomic.write_text(folder / f"{stem}.md", text)
        atomic.write_text(folder / f"{stem}.log", log)
        written += [folder / f"{stem}{suffix}" for suffix in (".json", ".md", ".log")]
    return written


def _report(name: str, section: dict) -> None:
    print(f"[gpu-check] {name}: {section['status']} in {section['seconds']:.0f} s "
          f"({section['note']})", flush=True)


def run_all(selected: list[str], args: argparse.Namespace) -> tuple[dict, dict, float, str]:
    """Env first (whether there is CUDA decides the sizes), then the selected sections in
    order; returns the sections, the config, the budget they had together and their log."""
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    cfg_path = tmp / "config.json"
    cfg_path.write_text("{}")  # env needs no sizes
    env_budget = budgets(["env"], None, args.tiny)["env"]
    sections = {"env": run_section("env", cfg_path, env_budget, tmp, {})}
    _report("env", sections["env"])
    found = sections["env"]["summary"] or {r["key"]: r["value"] for r in sections["env"]["rows"]}
    cfg = config("tiny" if args.tiny or not (found.get("cuda") or args.full) else "full",
                 args.data or _data_default())
    cfg_path.write_text(json.dumps(cfg))
    seconds = budgets(selected[1:], args.budget, cfg["size"] == "tiny") if selected[1:] else {}
    extra = {"TORCH_COMPILE_DISABLE": "1"} if cfg["compile_disabled"] else {}
    if cfg["size"] == "tiny":  # tiny tensors gain nothing from threads, and lose on a busy CPU
        extra["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "1")
    deadline = time.monotonic() + sum(seconds.values())  # each section is killed by this + GRACE_S
    for name in selected[1:]:
        budget = min(seconds[name], deadline - time.monotonic())
        if budget < 5:
            sections[name] = {"status": "skipped", "seconds": 0.0, "budget_s": 0.0, "rows": [],
                              "summary": None, "error": None, "note": "no time left in the budget"}
        else:
            sections[name] = (run_tests(budget, tmp, extra) if name == "cuda-tests" else
                              run_section(name, cfg_path, budget, tmp, extra))
        _report(name, sections[name])
    log = "".join(f"===== {p.stem}\n" + p.read_text(errors="replace")
                  for p in sorted(tmp.glob("*.log"), key=os.path.getmtime))
    shutil.rmtree(tmp, ignore_errors=True)
    return sections, cfg, env_budget + sum(seconds.values()), log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--tiny", action="store_true", help="tiny sizes (the default without CUDA)")
    size.add_argument("--full", action="store_true", help="the issue's sizes, even on CPU")
    parser.add_argument("--only", help=f"comma-separated sections (env always runs): {', '.join(BUDGETS)}")
    parser.add_argument("--budget", type=float, help="seconds for the selected sections together (env aside)")
    parser.add_argument("--data", type=Path, default=None, help="an IDX folder (default: the built-in mnist-5k sample)")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    selected = ["env"] + [n for n in (args.only.split(",") if args.only else BUDGETS) if n != "env"]
    unknown = [n for n in selected if n not in BUDGETS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r}; choose from {', '.join(BUDGETS)}")
    start = time.monotonic()
    sections, cfg, budget, log = run_all(selected, args)
    device = next((r["value"] for r in sections["env"]["rows"] if r["key"] == "device"),
                  "unknown device")
    result = {"device": device, "slug": gpu_report.slug(device), "date": dt.date.today().isoformat(),
              "size": cfg["size"], "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
              "budget_s": budget, "total_s": time.monotonic() - start, "config": cfg,
              "order": list(sections), "sections": sections}  # JSON sorts keys: "order" keeps it
    result["targets"] = gpu_report.targets(result)
    text = gpu_report.markdown(result)
    for path in _write(result, text, log, args.results):
        print(f"-> {path}")
    print(text, flush=True)
    return 1 if any(s["status"] == "FAILED" for s in sections.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
