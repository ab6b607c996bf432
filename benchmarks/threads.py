"""torch's default threads (one per core) against one thread, on a machine made busy on purpose.

For each background load (busy-loop processes this script starts, and stops before the next
row) it times a G step of the recipe (params.yaml with --set overrides, 28x28x1, batch 64)
in a fresh process per thread setting, so no measurement inherits another's thread pool:

    python benchmarks/threads.py                          # loads 0, 2, 4; default vs 1 thread
    python benchmarks/threads.py --set model.ngf=32 --set model.ndf=16 --loads 0,2,4,8

Prints a markdown table. Run it alone: other jobs are background load it does not count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUSY = "while True: pass"


def child(threads: int | None, batch: int, steps: int, overrides: list[str]) -> dict:
    """Seconds per G step in a fresh process (``threads`` None: torch's default)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "DCGAN_THREADS")}
    code = ("import json, sys, torch; sys.path.insert(0, sys.argv[1]); "
            "from benchlib import parse_set; import argparse; "
            "from step_cost import seconds_per_g_step; "
            "t = int(sys.argv[2]); t and torch.set_num_threads(t); torch.manual_seed(0); "
            "o = parse_set(argparse.ArgumentParser(), json.loads(sys.argv[5])); "
            "s, _ = seconds_per_g_step(1, 28, int(sys.argv[3]), int(sys.argv[4]), o); "
            "print(json.dumps({'seconds': s, 'threads': torch.get_num_threads()}))")
    out = subprocess.run([sys.executable, "-c", code, str(HERE), str(threads or 0), str(batch),
                          str(steps), json.dumps(overrides)], env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def with_load(n: int, measure):
    """Run ``measure()`` while ``n`` busy-loop processes spin; always stop them."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(n)]
    try:
        time.sleep(1.0 if n else 0)  # let them reach the run queue
        return measure()
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", default="0,2,4", help="busy processes, comma list")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8, help="G steps timed per measurement")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a params override (YAML value), e.g. model.ngf=32")
    args = parser.parse_args()
    loads = [int(x) for x in args.loads.split(",")]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{', '.join(args.set) or 'params.yaml'}, batch {args.batch}, 28x28x1, {cores} cores; "
          f"s per G step over {args.steps} steps after a warm-up epoch")
    print("| background load | default threads | s per G step | 1 thread | s per G step | "
          "1 thread faster by |\n|---|---|---|---|---|---|")
    for load in loads:
        default, one = with_load(load, lambda: (child(None, args.batch, args.steps, args.set),
                                                child(1, args.batch, args.steps, args.set)))
        print(f"| {load} | {default['threads']} | {default['seconds']:.3f} | 1 | "
              f"{one['seconds']:.3f} | {default['seconds'] / one['seconds']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
