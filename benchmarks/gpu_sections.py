"""The GPU check's sections, each run by ``gpu_check.py`` in a process of its own.

    python benchmarks/gpu_sections.py SECTION CONFIG.json ROWS.jsonl BUDGET_S

A section appends one JSON line per finished row to ROWS (``{"row": ...}``), so a crash or a
kill at the time budget loses only the row in progress, then ``{"summary": ...}``, or
``{"error": "<one line>"}`` if it failed as a whole. Modules are imported inside the
sections: a section that needs less starts faster.
"""

from __future__ import annotations

import gc
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

Emit = Callable[[dict], None]
QUALITY_PATHS = {"fast": {}, "reference": None, "compiled": {"train.compile": "default"}}
PACKAGES = {"torchvision": "torchvision", "numpy": "numpy", "scipy": "scipy", "yaml": "PyYAML",
            "tqdm": "tqdm", "PIL": "pillow", "pytest": "pytest", "matplotlib": "matplotlib",
            "filelock": "filelock", "mlflow": "mlflow", "dvc": "dvc",
            "torch_fidelity": "torch-fidelity"}  # module -> distribution
REQUIRED = ("torchvision", "numpy", "scipy", "yaml", "tqdm", "PIL", "pytest", "matplotlib",
            "filelock")  # what the library path and collecting tests/ import


def one_line(err: BaseException) -> str:
    """``Type: first line of the message``, at most 300 characters."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")[:300]


def _device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _version(module: str, dist: str) -> str:
    import importlib.metadata
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return "absent"
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "present (no version)"


def env(cfg: dict, deadline: float, emit: Emit) -> dict:
    """What the machine is: GPU (or CPU), torch, CUDA, cuDNN, free memory, packages. Rows go
    out as they are known: the parent reads ``cuda`` from them even if a later one fails."""
    import os
    import platform

    import torch

    info: dict[str, Any] = {"cuda": torch.cuda.is_available(), "torch": torch.__version__,
                            "python": platform.python_version()}
    if info["cuda"]:
        props = torch.cuda.get_device_properties(0)
        free, total = torch.cuda.mem_get_info(0)
        info.update(device=props.name, capability=f"{props.major}.{props.minor}",
                    multiprocessors=props.multi_processor_count, cuda_runtime=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version(), bf16=torch.cuda.is_bf16_supported(),
                    memory_free_gib=round(free / 2**30, 1), memory_total_gib=round(total / 2**30, 1))
    else:
        info.update(device="cpu", cpu=platform.machine(), cores=os.cpu_count(),
                    torch_threads=torch.get_num_threads())
    for key, value in info.items():
        emit({"key": key, "value": value, "status": "ok"})
    for module, dist in PACKAGES.items():
        info[dist] = _version(module, dist)
        emit({"key": dist, "value": info[dist], "status": "ok"})
    missing = [PACKAGES[m] for m in REQUIRED if info[PACKAGES[m]] == "absent"]
    if missing:  # the rest of the check would fail on them: say which, once
        emit({"key": "missing", "value": ", ".join(missing), "status": "FAILED",
              "error": f"missing {', '.join(missing)}: carry wheels (benchmarks/NOTES.md)"})
    return info


def _release() -> None:
    """Drop the last configuration's compiled code, CUDA graphs and cached memory."""
    import torch

    gc.collect()
    torch._dynamo.reset()
    if torch.cuda.is_available():
        from torch._inductor import cudagraph_trees

        getattr(cudagraph_trees, "reset_cudagraph_trees", lambda: None)()  # private: may move
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _reference(cfg: dict, folder: Path, device) -> dict:
    import bench

    _, widths = bench.networks(cfg["model"])
    ips = bench.reference(folder, device, cfg["batch"], cfg["reference_epochs"], **widths)
    return {"images_per_s": ips, "ratio": 1.0, "peak_gib": _peak_gib(device), "dtype": "fp32"}


def _ours(cfg: dict, folder: Path, device, loss: str, mode: str, full: int,
          reference: float | None) -> dict:
    """Two epochs through ``Trainer.train_epoch()``: the first compiles, the second is steady."""
    import bench
    import benchlib
    import torch

    ours, _ = bench.networks(cfg["model"])  # the reference loop's networks and maths
    t = benchlib.trainer(folder, device, {**ours, "loss": loss, "train.epochs": 2,
                                          "train.batch_size": cfg["batch"],
                                          "train.compile": mode})
    times, stats = benchlib.epoch_times(t, 2)
    if not torch.isfinite(stats).all():
        raise FloatingPointError(f"non-finite losses in epoch 2: {stats[-1].tolist()}")
    images = benchlib.images_per_epoch(t)
    ips = images / times[1]
    d_loss, g_loss = stats[:, :2].mean(0).tolist()
    return {"images_per_epoch": images, "first_epoch_s": times[0], "steady_epoch_s": times[1],
            "images_per_s": ips, "first_minus_steady_s": times[0] - times[1],
            "full_images": full, "full_epoch_s": full / ips, "peak_gib": _peak_gib(device),
            "ratio": ips / reference if reference else None,
            "dtype": "bf16" if t.amp else "fp32", "d_loss": d_loss, "g_loss": g_loss,
            "fused_adam": bool(t.nets.opt_g.param_groups[0].get("fused"))}


def _guarded(emit: Emit, row: dict, work: Callable[[], dict]) -> dict | None:
    """Run one row; record it ok with its numbers, or FAILED with a one-line error."""
    try:
        done = {**row, **work(), "status": "ok"}
    except Exception as err:
        traceback.print_exc()
        emit({**row, "status": "FAILED", "error": one_line(err)})
        return None
    emit(done)
    return done


def training(mode: str) -> Callable[[dict, float, Emit], dict]:
    """The section of one compile mode: the reference loop per set, then its plan of rows."""

    def section(cfg: dict, deadline: float, emit: Emit) -> dict:
        import benchlib

        device, plan = _device(), cfg["plan"][mode]
        names = list(dict.fromkeys(name for name, _ in plan))
        cost: dict[str, float] = {}  # seconds the last row of each set took
        with tempfile.TemporaryDirectory() as tmp:
            sets = {n: cfg["sets"][n] for n in names}
            folders = {n: benchlib.synthetic_set(Path(tmp) / n, s["images"], s["nc"], s["size"])
                       for n, s in sets.items()}
            refs = {}
            for name in names:
                row = {"set": name, "loss": "bce", "mode": "reference loop"}
                done = _guarded(emit, row, lambda: _reference(cfg, folders[name], device))
                refs[name] = done and done["images_per_s"]
                _release()
            for name, loss in plan:
                row = {"set": name, "loss": loss, "mode": mode}
                guess = cost.get(name, cfg["guess_s"]["eager" if mode == "eager" else "compiled"])
                if time.monotonic() + guess > deadline:
                    emit({**row, "status": "skipped", "error": "section time budget"})
                    continue
                start = time.monotonic()
                _guarded(emit, row, lambda: _ours(cfg, folders[name], device, loss, mode,
                                                  sets[name]["full"], refs[name]))
                cost[name] = time.monotonic() - start
                _release()
        return {"mode": mode}

    return section


def quality(cfg: dict, deadline: float, emit: Emit) -> dict:
    """Classifier-space FD of the fast path(s) against fp32 eager, several seeds each."""
    import quality as q

    c = cfg["quality"]
    source = Path(c["data"])
    if not (source / "train-images-idx3-ubyte.gz").is_file() and not (
            source / "train-images-idx3-ubyte").is_file():
        raise FileNotFoundError(f"{source} holds no MNIST IDX files: pass --data an IDX folder, "
                                "or leave it out for the built-in mnist-5k sample")
    paths = {p: q.REFERENCE if QUALITY_PATHS[p] is None else QUALITY_PATHS[p] for p in c["paths"]}
    done = q.compare(source, paths, c["seeds"], c["epochs"], c["batch"], c["common"],
                     deadline=deadline - c["run_guess_s"],
                     on_run=lambda p, r: emit({"path": p, **r, "status": "ok"}),
                     on_error=lambda p, s, e: emit({"path": p, "seed": s, "status": "FAILED",
                                                    "error": one_line(e)}))
    for _ in range(done["skipped"]):
        emit({"path": "-", "status": "skipped", "error": "section time budget"})
    ref = done["summary"].get("reference")
    for path, s in done["summary"].items():
        if ref and path != "reference":
            s["within_reference_spread"] = abs(s["mean"] - ref["mean"]) <= ref["std"]
    return {"summary": done["summary"], "held_out": done["held_out"], "overrides": paths}


def metrics(cfg: dict, deadline: float, emit: Emit) -> dict:
    """Seconds for classifier-space IS/FD/KID/precision-recall of N samples (after a warm-up)."""
    import bench

    device, c = _device(), cfg["metrics"]
    warm = bench.evaluation_seconds(device, c["warmup"])
    emit({"samples": c["samples"], "seconds": bench.evaluation_seconds(device, c["samples"]),
          "warmup_samples": c["warmup"], "warmup_seconds": warm, "status": "ok"})
    return {}


SECTIONS = {"env": env, "train-eager": training("eager"), "train-default": training("default"),
            "train-reduce-overhead": training("reduce-overhead"), "quality": quality,
            "metrics": metrics}


def main(section: str, config: str, rows: str, budget: str) -> int:
    deadline = time.monotonic() + float(budget)
    cfg = json.loads(Path(config).read_text())
    with open(rows, "a", encoding="utf-8") as out:
        def emit(record: dict, kind: str = "row") -> None:
            out.write(json.dumps({kind: record}, default=str) + "\n")
            out.flush()
            print(f"[{section}] {kind}: {json.dumps(record, default=str)}", flush=True)

        try:
            emit(SECTIONS[section](cfg, deadline, emit), "summary")
        except Exception as err:
            traceback.print_exc()
            emit(one_line(err), "error")  # type: ignore[arg-type]
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
