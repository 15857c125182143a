"""Data-parallel training on CPU: one process against two (Accelerate, gloo), batch 4 per process.

    .venv/bin/python benchmarks/bench_train_processes.py [--quick] [--steps 24] [--threads 1] [--work DIR]

Default path (caches built ahead, frozen text encoders) at 128 px, LoRA, on the tiny and the small
SDXL (train_runs.py). Prints global images/s, peak memory per process (VmHWM polled from /proc;
the wait4 peak is the run's largest process) and start-up. --quick: the tiny SDXL only.
"""

from __future__ import annotations

import argparse

from tables import table
from train_runs import add_run_arguments, workbench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(ap)
    args = ap.parse_args()
    with workbench(args) as (bench, models):
        rows = []
        for model_name, model in models.items():
            cache_dir = bench.cache_dir(model_name)
            bench.build_cache(model_name, model, cache_dir)
            one = bench.train(f"{model_name} 1 process", model, cache_dir, {}, processes=1)
            two = bench.train(f"{model_name} 2 processes", model, cache_dir, {}, processes=2)
            for r, n in ((one, 1), (two, 2)):
                rows.append([model_name, n, bench.threads, f"{r.images_per_s:.2f}", f"{r.images_per_s / one.images_per_s:.2f}x",
                             " / ".join(f"{m:.0f}" for m in r.per_process_peak_mb), f"{r.peak_rss_mb:.0f}", f"{r.startup_s:.1f}"])
        print("\n### Data-parallel processes (default path, frozen text encoders, batch 4 per process)\n")
        print(table(["model", "processes", "threads each", "global images/s", "vs 1 process", "VmHWM MB per process",
                     "peak RSS MB (wait4)", "start-up s"], rows))


if __name__ == "__main__":
    main()
