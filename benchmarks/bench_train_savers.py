"""Memory and speed switches (`train.*` in training/switches.py) against the default path, on the small SDXL.

    .venv/bin/python benchmarks/bench_train_savers.py [--quick] [--steps 24] [--skip-compile-run] [--work DIR]

A baseline run (default path: caches built ahead by `coverforge cache`, frozen text encoders, sdpa,
no checkpointing, no compile, fp32), then one run per switch, each in its own process at 128 px,
batch 4, LoRA (train_runs.py). Prints images/s and peak RSS against the baseline, and whether
torch.compile works on this CPU at all. --quick: the tiny SDXL and the first switch only.
"""

from __future__ import annotations

import argparse
import subprocess

from measured_process import PYTHON, child_env
from tables import table
from train_runs import add_run_arguments, workbench

SWITCHES: dict[str, dict[str, object]] = {
    "gradient checkpointing on": {"run.gradient_checkpointing": True},
    "attention eager": {"run.attention": "eager"},
    "compile_unet on": {"run.compile_unet": True},
    "mixed precision bf16": {"train.mixed_precision": "bf16"},
}


def compile_probe(threads: int) -> str:
    """Whether inductor can compile and run a small module here (it needs a C++ toolchain)."""
    code = ("import torch; m = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.GELU()); "
            "c = torch.compile(m); x = torch.randn(8, 64); assert torch.allclose(c(x), m(x), atol=1e-5); print('ok')")
    done = subprocess.run([PYTHON, "-c", code], env=child_env(threads), capture_output=True, text=True, timeout=600)
    if done.returncode == 0:
        return "works (inductor compiled and ran a Linear+GELU)"
    last = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return "FAILS: " + (last[-1] if last else f"exit {done.returncode}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(ap)
    ap.add_argument("--skip-compile-run", action="store_true", help="probe torch.compile only; no compile_unet training run")
    args = ap.parse_args()
    switches = [s for s in SWITCHES if not (s == "compile_unet on" and (args.quick or args.skip_compile_run))]
    with workbench(args) as (bench, models):
        model_name = "tiny" if args.quick else "small"
        model, cache_dir = models[model_name], bench.cache_dir(model_name)
        bench.build_cache(model_name, model, cache_dir)
        baseline = bench.train(f"{model_name} default TE frozen", model, cache_dir, {})
        rows = [["baseline (sdpa, no checkpointing, no compile, fp32)", f"{baseline.images_per_s:.2f}", "1.00x", f"{baseline.peak_rss_mb:.0f}", "1.00x"]]
        for name in switches[:1] if args.quick else switches:
            try:
                r = bench.train(f"{model_name} {name}", model, cache_dir, SWITCHES[name])
            except RuntimeError as e:
                rows.append([name, "failed", "-", "-", str(e).splitlines()[0][:120]])
                continue
            rows.append([name, f"{r.images_per_s:.2f}", f"{r.images_per_s / baseline.images_per_s:.2f}x", f"{r.peak_rss_mb:.0f}",
                         f"{r.peak_rss_mb / baseline.peak_rss_mb:.2f}x"])
        print(f"\n### Memory and speed switches, {model_name} SDXL, default path, frozen text encoders\n")
        print(table(["switch", "images/s", "vs baseline", "peak RSS MB", "vs baseline"], rows))
        print(f"\ntorch.compile on this CPU: {compile_probe(bench.threads)}")


if __name__ == "__main__":
    main()
