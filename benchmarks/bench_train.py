"""Training throughput: our default path (latent + text caches, aspect buckets) against the no-cache path.

    .venv/bin/python benchmarks/bench_train.py [--quick] [--steps 24] [--repeats 3] [--threads 1] [--work DIR]

On a synthetic prepared dataset (demo-catalogue covers of mixed aspect ratios, 200-400-token
prompts; train_runs.py), the tiny and a small-but-proportioned SDXL (small_models.py) each train
with `coverforge train` in subprocesses at 128 px, batch 4, LoRA recipe, for every pair of {default
path, no cache + no buckets} x {frozen text encoders, LoRA on both text encoders}. Prints steady
images/s, peak RSS, start-up and the ratio to the uncached run, and how long `coverforge cache`
took beforehand. The other training benchmarks: bench_train_savers.py (memory and speed switches),
bench_train_processes.py (one process against two), bench_vae_memory.py, bench_unet_step.py and
bench_unet_estimate.py (the real-size UNet on a GPU, and on paper).
"""

from __future__ import annotations

import argparse
import statistics

from tables import table
from train_runs import Bench, RunResult, add_run_arguments, workbench

PATHS = {"default": {}, "no cache, no buckets": {"run.cache": False, "data.buckets": False}}
ENCODERS = {"frozen": {}, "LoRA on both": {"train.train_text_encoder": True, "train.train_text_encoder_2": True}}


def cache_state(result: RunResult, uncached_path: bool) -> str:
    if uncached_path:
        return "off"
    if not result.cache_after:
        return "on, NOT ACTIVE (no cache files)"
    new = result.cache_after - result.cache_before
    return f"on, built {new} shard files in the run" if new else f"on, read {result.cache_after} prebuilt files"


def alternating_runs(bench: Bench, model_name: str, model, enc_name: str, repeats: int) -> dict[str, list[RunResult]]:
    """Both paths `repeats` times, alternating (A B A B ...): on a shared VM the machine's speed
    drifts by 10-20% over minutes, and a ratio of neighbouring runs cancels most of that drift."""
    runs: dict[str, list[RunResult]] = {name: [] for name in PATHS}
    for rep in range(repeats):
        for path_name, path in PATHS.items():
            suffix = f" #{rep + 1}" if repeats > 1 else ""
            name = f"{model_name} {path_name} TE {enc_name}{suffix}"
            runs[path_name].append(bench.train(name, model, bench.cache_dir(model_name), {**path, **ENCODERS[enc_name]}))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(ap)
    ap.add_argument("--repeats", type=int, default=1, help="alternating runs per path; the ratio is the median of neighbouring pairs")
    args = ap.parse_args()
    with workbench(args) as (bench, models):
        rows, cache_rows = [], []
        for model_name, model in models.items():
            built = bench.build_cache(model_name, model, bench.cache_dir(model_name))
            cache_rows.append([model_name, "`coverforge cache` before training" if built else "not built ahead (no `coverforge cache`)",
                               f"{built[0]:.1f}" if built else "-", f"{built[1]:.0f}" if built else "-"])
            for enc_name in ENCODERS:
                runs = alternating_runs(bench, model_name, model, enc_name, args.repeats)
                ratios = [a.images_per_s / b.images_per_s for a, b in zip(runs["default"], runs["no cache, no buckets"])]
                for path_name, rs in runs.items():
                    ratio = statistics.median(ratios) if path_name == "default" else 1.0
                    spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if path_name == "default" and len(ratios) > 1 else ""
                    rows.append([model_name, enc_name, path_name, cache_state(rs[-1], path_name != "default"),
                                 f"{statistics.median(x.images_per_s for x in rs):.2f}", f"{ratio:.2f}x{spread}",
                                 f"{max(x.peak_rss_mb for x in rs):.0f}", f"{statistics.median(x.startup_s for x in rs):.1f}"])
        print(f"\n### Throughput at 128 px, batch 4, LoRA (steady state; median of {args.repeats} alternating runs per path)\n")
        print(table(["model", "text encoders", "path", "cache", "images/s", "vs uncached (range)", "peak RSS MB", "start-up s"], rows))
        print("\n### Cache build\n")
        print(table(["model", "how", "seconds", "peak RSS MB"], cache_rows))


if __name__ == "__main__":
    main()
