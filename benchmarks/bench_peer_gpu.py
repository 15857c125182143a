"""On a GPU, side by side with diffusers' LoRA examples: the published SDXL at 1024 px (SD 1.5 at 512), fp16 and bf16.

    python3 benchmarks/bench_peer_gpu.py --work /tmp/peer-gpu --out $OUT/peer_gpu.json [--budget-s 330]
    python3 benchmarks/bench_peer_gpu.py --family sd15 --rows frozen --work /tmp/peer-gpu --out $OUT/peer_gpu_sd15.json
    .venv/bin/python benchmarks/bench_peer_gpu.py --model small-sdxl --resolution 128 --steps 8 --warm 3 \\
        --peer-python ../peer-venv/bin/python --tvshim ../shared/peers/tvshim --precisions no   # the CPU rehearsal

The SDXL rows of bench_peer.py (frozen text encoders; LoRA on both) as a user renting a GPU runs
them: SDXL-base's published UNet, text encoders and VAE (small_models.write_real_sdxl, random
weights: the cost is in the shapes, and no weights can be downloaded here), 64 square covers of
1024 px through `coverforge prepare --from-folder`, batch 4, LoRA rank 4, lr 1e-4 constant, seed 0,
`--mixed_precision fp16|bf16` on both sides (bench_peer.DIFFERENCES lists what still differs). The
peer is `train_text_to_image_lora_sdxl.py`, unmodified. `--family sd15` runs bench_peer.py's SD 1.5
row the same way: SD 1.5's published UNet, CLIP-L and VAE (small_models.write_real_sd15) at 512 px
against `train_text_to_image_lora.py`, frozen text encoder only (that example trains no text LoRA).

Method. Each run is a whole process in a fresh folder (coverforge's caches and the peer's Arrow
cache built inside it), sides alternating within a pair. A GPU run's start-up (imports, reading
13.6 GB of weights, caching) is long beside its steps and the budget is minutes, so the short-minus-
long method of bench_peer.py would spend most of it on start-ups: the steady rate is read instead
from each process's own step bar, timed as its output arrives (peer_runs.run_process): batch x steps
between the first update at or past --warm steps and the last one, over the seconds between them.
Both trainers read their loss back every step, so their bars cannot run ahead of the GPU. Peak GPU
memory is nvidia-smi's reading during the run less the one before it (peer_runs.GpuMemory): what
each process held, allocator reserve and CUDA context included, measured alike. A run starts only
while --budget-s lasts; the JSON is rewritten after every run, so a run cut short keeps its figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measured_process import machine_line  # noqa: E402
from peer_data import build_dataset, build_model, tokenizers_of  # noqa: E402
from peer_runs import BATCH, Run, run_coverforge, run_peer  # noqa: E402
from tables import table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COVERS = 64
SCRIPTS = {"sdxl": "train_text_to_image_lora_sdxl.py", "sd15": "train_text_to_image_lora.py"}
FAMILY_TITLES = {"sdxl": "SDXL", "sd15": "SD 1.5"}
DEFAULT_RESOLUTION = {"sdxl": 1024, "sd15": 512}
ROWS = {"frozen": False, "te": True}  # text-encoder LoRA off / on both encoders
TITLES = {"frozen": "frozen text encoders", "te": "LoRA on both text encoders"}


def bar_rate(run: Run, warm: int) -> float | None:
    """Steady images/s from the run's step-bar updates: from the first at or past `warm` steps to the last."""
    timed = [(t, n) for t, n in run.updates if n >= warm]
    if len(timed) < 2 or timed[-1][1] == timed[0][1]:
        return None
    (t0, n0), (t1, n1) = timed[0], timed[-1]
    return BATCH * (n1 - n0) / (t1 - t0)


def record(run: Run, warm: int) -> dict:
    first = run.first_step_s if run.side == "coverforge" else (run.updates[0][0] if run.updates else float("nan"))
    return {"side": run.side, "steps": run.steps, "steady_images_per_s": bar_rate(run, warm), "wall_s": round(run.wall_s, 2),
            "first_step_s": round(first, 2), "gpu_peak_mib": run.gpu_peak_mib, "peak_rss_mb": round(run.peak_mb),
            "cuda_peak": run.cuda_peak}


def summary(jobs: dict[str, list[dict]]) -> list[list[str]]:
    """One table line per measure and job: medians of the pairs, ratio coverforge / peer (median, range)."""
    lines = []
    for job, runs in jobs.items():
        pairs = [p for p in _pairs(runs) if all(p[s]["steady_images_per_s"] for s in ("coverforge", "peer"))]
        if not pairs:
            lines.append([job, "no complete pair", "", "", "", ""])
            continue
        for key, label, fmt in (("steady_images_per_s", "steady images/s", ".2f"), ("wall_s", "whole run, s", ".1f"),
                                ("first_step_s", "launch to first step, s", ".1f"), ("gpu_peak_mib", "peak GPU memory, MiB", ".0f"),
                                ("peak_rss_mb", "peak RSS, MB", ".0f")):
            cf, peer = [p["coverforge"][key] for p in pairs], [p["peer"][key] for p in pairs]
            if None in cf or None in peer:
                continue
            ratios = [a / b for a, b in zip(cf, peer)]
            lines.append([job if key == "steady_images_per_s" else "", label, f"{statistics.median(cf):{fmt}}",
                          f"{statistics.median(peer):{fmt}}", f"{statistics.median(ratios):.2f}x", f"{min(ratios):.2f}-{max(ratios):.2f}x"])
    return lines


def _pairs(runs: list[dict]) -> list[dict]:
    by_pair: dict[int, dict] = {}
    for r in runs:
        by_pair.setdefault(r["pair"], {})[r["side"]] = r
    return [p for p in by_pair.values() if len(p) == 2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="frozen,te", help="frozen, te (LoRA on both text encoders)")
    ap.add_argument("--precisions", default="bf16,fp16", help="mixed precision of both sides: bf16, fp16, no")
    ap.add_argument("--pairs", type=int, default=2, help="alternating pairs per row and precision, while the budget lasts")
    ap.add_argument("--steps", type=int, default=50, help="steps of every run")
    ap.add_argument("--warm", type=int, default=10, help="steps before the steady rate is timed")
    ap.add_argument("--family", default="sdxl", choices=sorted(SCRIPTS), help="sdxl (the default rows) or sd15")
    ap.add_argument("--model", default=None,
                    help="real-sdxl / real-sd15 (the GPU rows; the default), small-sdxl or tiny-sd15 (CPU rehearsals)")
    ap.add_argument("--resolution", type=int, default=None, help="cover side in px (default 1024 for sdxl, 512 for sd15)")
    ap.add_argument("--budget-s", type=float, default=330, help="no run starts after this many seconds")
    ap.add_argument("--work", type=Path, required=True, help="folder for the model, dataset and runs (reused)")
    ap.add_argument("--out", type=Path, default=Path("peer_gpu.json"))
    ap.add_argument("--peers", type=Path, default=REPO.parent / "shared" / "peers", help="folder with the peer scripts")
    ap.add_argument("--peer-python", type=Path, default=Path(sys.executable), help="python that runs the peer")
    ap.add_argument("--tvshim", type=Path, default=None, help="peers/tvshim, where torchvision fails at import (CPU machine)")
    args = ap.parse_args()
    if args.warm < 1 or args.steps <= args.warm + 1:
        ap.error("--steps must exceed --warm + 1, and --warm be at least 1")
    script = SCRIPTS[args.family]
    args.model = args.model or f"real-{args.family}"
    args.resolution = args.resolution or DEFAULT_RESOLUTION[args.family]
    if args.family == "sd15" and args.rows != "frozen":
        ap.error("--family sd15 has one row, --rows frozen: train_text_to_image_lora.py trains no text-encoder LoRA")
    if not (args.peers / script).is_file():
        print(f"peer script missing: {args.peers / script} (diffusers' example; see ../shared/peers/README.md)")
        return 2
    started = time.perf_counter()
    deadline = started + args.budget_s
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    report = {"machine": machine_line(), "commit": commit or None, "settings": {k: str(v) for k, v in vars(args).items()}, "runs": {}}
    print(f"machine: {report['machine']}\ncommit: {commit}", flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    model = build_model(args.model, args.work / args.model)
    dataset, longest = build_dataset(args.work / f"dataset-{args.resolution}", args.resolution, COVERS, tokenizers_of(model))
    report["setup_s"] = round(time.perf_counter() - t, 1)
    print(f"model {model}, {COVERS} covers of {args.resolution} px, longest prompt {longest} CLIP tokens; setup {report['setup_s']} s",
          flush=True)
    jobs = [(row, p) for row in args.rows.split(",") if row for p in args.precisions.split(",") if p]
    longest_pair = 0.0
    for pair in range(args.pairs):
        for row, precision in jobs:
            title = "frozen text encoder" if args.family == "sd15" else TITLES[row]  # SD 1.5 has one
            job = f"{FAMILY_TITLES[args.family]} {args.resolution} px, {title}, {precision}"
            if time.perf_counter() + longest_pair > deadline:
                print(f"  budget: {job} pair {pair + 1} not started", flush=True)
                continue
            t = time.perf_counter()
            for side in ["coverforge", "peer"][:: 1 if pair % 2 == 0 else -1]:
                folder = args.work / "runs" / f"{row}-{precision}-{side}"
                try:
                    if side == "coverforge":
                        run = run_coverforge(folder, model, args.family, dataset, args.resolution, args.steps, ROWS[row], 0, precision)
                    else:
                        run = run_peer(folder, args.peer_python, args.peers / script, args.tvshim, model, dataset, args.resolution,
                                       args.steps, ROWS[row], 0, precision)
                    entry = {"pair": pair + 1, **record(run, args.warm)}
                except RuntimeError as e:
                    entry = {"pair": pair + 1, "side": side, "error": str(e)[-1500:]}
                report["runs"].setdefault(job, []).append(entry)
                print(f"  {job}, pair {pair + 1}: {json.dumps(entry)}", flush=True)
                report["wall_s"] = round(time.perf_counter() - started, 1)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(report, indent=1))
            longest_pair = max(longest_pair, time.perf_counter() - t)
    lines = summary({job: [r for r in runs if "error" not in r] for job, runs in report["runs"].items()})
    print(f"\n### coverforge against {script} ({args.model}, {args.resolution} px, batch {BATCH}; median of the pairs; "
          "ratio = coverforge / peer: above 1 is better for images/s, below 1 for the others)\n")
    print(table(["row", "measure", "coverforge", "peer", "ratio (median)", "ratio range"], lines))
    print(f"\ntotal {time.perf_counter() - started:.0f} s; {machine_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
