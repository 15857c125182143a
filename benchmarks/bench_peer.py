"""Side by side with the scripts users would run instead: `coverforge train` against diffusers' LoRA examples.

    .venv/bin/python benchmarks/bench_peer.py [--rows tiny-frozen,sd15] [--pairs 3] [--threads 1] [--work DIR]
    .venv/bin/python benchmarks/bench_peer.py --quick      # smoke run: every row, 2 and 6 steps, one pair

Same model, data (64 square covers through `coverforge prepare --from-folder`, prompts under 77
tokens), resolution, batch 4, LoRA rank 4 (alpha 4, gaussian init, the peers' target modules),
AdamW lr 1e-4 constant without warm-up, clipping 1.0, seed 0, fp32, one process each with
OMP_NUM_THREADS=--threads. The peers are `train_text_to_image_lora_sdxl.py`,
`train_text_to_image_lora.py` and, for the tiny Qwen-Image and Z-Image (`coverforge tiny-model`),
`train_dreambooth_lora_qwen_image.py` and `train_dreambooth_lora_z_image.py` from ../shared/peers,
run unmodified with the peer venv (../peer-venv; see ../shared/peers/README.md). Every run is a
whole process in a fresh folder (caches included), and the sides alternate (A B, then B A) over --pairs pairs, each side running a short and a long run:
steady images/s = (images_long - images_short) / (wall_long - wall_short), so start-up and cache
building cancel. Ratios are coverforge / peer per pair; the table gives their median and range.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measured_process import machine_line  # noqa: E402
from peer_data import build_dataset, build_model, llm_tokens, tokenizers_of  # noqa: E402
from peer_runs import BATCH, FLOW_FAMILIES, Run, run_coverforge, run_peer  # noqa: E402
from tables import table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COVERS = 64
NOISE_LIMIT = 0.05
HEADER = ["row", "measure", "coverforge", "peer", "ratio (median)", "ratio range"]


@dataclasses.dataclass
class Row:
    title: str
    model: str  # peer_data.build_model name
    family: str
    resolution: int
    text_lora: bool
    script: str
    long_steps: int
    """Default long run. Tiny models: 610 (a 310-step difference is ~12 s idle, so 5% of it leaves
    0.6 s for start-up spread); small SDXL: 110 (its steps are 10-20x dearer); tiny Qwen-Image and
    Z-Image: 1810 (their steps are cheap: at 610 the start-up spread was 7-13% of the difference)."""
    settings: dict = dataclasses.field(default_factory=dict)
    """coverforge options beyond the shared settings (a speed option the peer lacks), by config section."""

    @property
    def compiles(self) -> bool:
        return bool(self.settings.get("run", {}).get("compile_unet"))


ROWS = {
    "tiny-frozen": Row("tiny SDXL 64 px, frozen text encoders", "tiny-sdxl", "sdxl", 64, False, "train_text_to_image_lora_sdxl.py", 610),
    "tiny-te": Row("tiny SDXL 64 px, LoRA on both text encoders", "tiny-sdxl", "sdxl", 64, True, "train_text_to_image_lora_sdxl.py", 610),
    "small-frozen": Row("small SDXL 128 px, frozen text encoders", "small-sdxl", "sdxl", 128, False, "train_text_to_image_lora_sdxl.py", 110),
    "small-te": Row("small SDXL 128 px, LoRA on both text encoders", "small-sdxl", "sdxl", 128, True, "train_text_to_image_lora_sdxl.py", 110),
    "sd15": Row("tiny SD 1.5 64 px, frozen text encoder", "tiny-sd15", "sd15", 64, False, "train_text_to_image_lora.py", 610),
    "sd15-compile": Row("tiny SD 1.5 64 px, frozen text encoder, coverforge with run.compile_unet", "tiny-sd15", "sd15", 64, False,
                        "train_text_to_image_lora.py", 1210, {"run": {"compile_unet": True}}),
    "qwen-image": Row("tiny Qwen-Image 64 px, LoRA on the transformer", "tiny-qwen-image", "qwen-image", 64, False,
                      "train_dreambooth_lora_qwen_image.py", 1810),
    "z-image": Row("tiny Z-Image 64 px, LoRA on the transformer", "tiny-z-image", "z-image", 64, False,
                   "train_dreambooth_lora_z_image.py", 1810),
}

DIFFERENCES = """\
Settings both sides share: batch 4, LoRA rank 4 / alpha 4 / gaussian init on UNet to_q, to_k, to_v, to_out.0
(coverforge: lora.unet_targets; its `attn` preset would add proj_in / proj_out) and, with text-encoder LoRA,
q/k/v/out_proj of every text encoder (lora.text_targets; coverforge's default adds fc1 / fc2), one learning
rate 1e-4 for every part (train.lr_text_encoder[_2] = 1e-4), AdamW betas 0.9 / 0.999, weight decay 1e-2,
eps 1e-8, constant schedule without warm-up (peer: --lr_scheduler constant ignores --lr_warmup_steps;
coverforge: lr_schedule = "constant", warmup_ratio = 0), grad-norm clipping 1.0, fp32, no EMA, no min-SNR,
no noise offset, no flips, no caption dropout, the scheduler's own prediction type, uniform timesteps, seed 0,
no checkpoint during the run, a tqdm bar and tensorboard logging (the defaults) on both sides.
What still differs, by design or by default:
- coverforge encodes each cover with the VAE once (latent cache, one posterior draw per step as
  latent_dist.sample() gives) and, with frozen text encoders, each prompt once; the peer runs the VAE and
  the text encoders on every batch. Both caches are built inside the measured run (fresh folder).
- coverforge puts covers in aspect buckets; the peer resizes the short side and crops at random. The
  covers are square at the training size, so both feed the same pixels.
- the peer loads the data with `datasets` (imagefolder; its Arrow cache built in the run) and re-tokenises
  every batch; coverforge reads the prepared dataset itself.
- coverforge uses torch's fused AdamW (the same update), stepping each part's LoRA tensors as one flat tensor; it logs to tensorboard every 10 steps
  (run.log_every) where the peer logs every step; at the end coverforge saves a resumable checkpoint and
  the LoRA, the peer saves the LoRA and loads the whole pipeline once more to load it back.
- the sd15-compile row adds coverforge's run.compile_unet (torch.compile of the UNet; the peer has no such
  option): the same training up to float rounding in the fused kernels. An untimed warm-up run fills
  torch's compile cache first; each timed run still compiles from that cache at start-up.
- `train_text_to_image_lora.py` (SD 1.5) never clips: it builds its optimizer from a filter() iterator and
  clips that same iterator, exhausted by then. coverforge clips (1.4% of a tiny SD 1.5 step, RESULTS.md).
Qwen-Image and Z-Image rows (flow matching; LoRA on the transformer's to_q/k/v/out.0, frozen LLM text encoder):
- the dreambooth peers take the imagefolder through --dataset_name with --caption_column (their required
  --instance_prompt is then unused), alpha through --lora_alpha, and run with --cache_latents, their own speed
  option: they encode each cover once (one latent draw, kept for the whole run) and, given captions, each
  prompt once, before the first step. coverforge's caches do the same work, keeping the VAE posterior and
  drawing a latent from it every step.
- weight decay 1e-4 on both sides (the peers' default); noise levels uniform (peer --weighting_scheme none
  picks a scheduler sigma at a uniform index; coverforge train.flow_weighting = "uniform" draws sigma uniform
  and shifts it as the scheduler config shifts its sampling sigmas): the same cost per step."""


def peer_missing(python: Path, peers: Path, scripts: set[str]) -> str:
    """Why the peer side cannot run, with how to fix it; empty when it can."""
    missing = [str(p) for p in [python, peers / "tvshim", *(peers / s for s in sorted(scripts))] if not p.exists()]
    if not missing:
        return ""
    return (f"peer side SKIPPED: missing {', '.join(missing)}. The scripts live in {peers} (diffusers' examples); "
            f"create the venv as {peers / 'README.md'} says: python3 -m venv {python.parents[1]} && "
            f"{python.parent}/pip install torch==2.13.0 diffusers==0.42.1 transformers==5.23.0 peft==0.21.2 "
            f"accelerate==1.15.0 safetensors datasets pillow numpy tqdm tensorboard && "
            f"{python.parent}/pip install --no-deps torchvision==0.28.0")


def steady(short: Run, long: Run) -> float:
    return BATCH * (long.steps - short.steps) / (long.wall_s - short.wall_s)


def first_step_from_bar(bar: tuple[float, int], step_s: float) -> float:
    """The bar showed n steps at t: the first step ended about n - 1 steady step times earlier (t itself
    when n is 1, or when the runs were too short for a positive step time)."""
    seconds, shown = bar
    return seconds - (shown - 1) * step_s if step_s > 0 else seconds


def summarise(row: Row, runs: list[dict[str, tuple[Run, Run]]], has_peer: bool) -> tuple[list[list[str]], list[str]]:
    """Table rows (median of pairs, ratio median and range) and the start-up-noise and method checks."""
    sides = ["coverforge", "peer"] if has_peer else ["coverforge"]
    per: dict[str, dict[str, list[float]]] = {s: {"ips": [], "wall": [], "first": [], "peak": [], "short": [], "diff": []} for s in sides}
    checks = []
    for pair in runs:
        for side in sides:
            short, long = pair[side]
            step_s = (long.wall_s - short.wall_s) / (long.steps - short.steps)
            first = long.first_step_s
            if side == "peer":
                first = first_step_from_bar(long.bar, step_s)
            elif long.bar:
                checks.append(f"method check ({row.title}): coverforge's bar gives first step {first_step_from_bar(long.bar, step_s):.2f} s, "
                              f"its own first_step_time {first:.2f} s")
            for key, value in (("ips", steady(short, long)), ("wall", long.wall_s), ("first", first), ("peak", long.peak_mb),
                               ("short", short.wall_s), ("diff", long.wall_s - short.wall_s)):
                per[side][key].append(value)
    for side in sides:
        diff = statistics.median(per[side]["diff"])
        if len(runs) < 2:
            checks.append(f"start-up noise ({side}): one pair, no spread to check (use --pairs 3)")
            continue
        noise = max(per[side]["short"]) - min(per[side]["short"])
        if diff <= 0:
            checks.append(f"start-up noise ({side}): NOT MET: the long runs were not slower than the short ones; raise --long")
            continue
        short, long = runs[0][side][0].steps, runs[0][side][1].steps
        needed = short + int((long - short) * noise / (NOISE_LIMIT * diff)) + 1  # the difference grows with the step count
        verdict = "ok" if noise < NOISE_LIMIT * diff else f"NOT MET: raise --long to about {needed}"
        checks.append(f"start-up noise ({side}): short-run wall range {noise:.2f} s = {100 * noise / diff:.1f}% of the "
                      f"measured difference {diff:.1f} s (limit {100 * NOISE_LIMIT:.0f}%): {verdict}")
    lines = []
    for key, label, fmt in (("ips", "steady images/s", ".1f"), ("wall", "whole long run, s", ".1f"),
                            ("first", "launch to first step, s", ".2f"), ("peak", "peak RSS, MB", ".0f")):
        cf = per["coverforge"][key]
        line = [row.title if key == "ips" else "", label, f"{statistics.median(cf):{fmt}}"]
        if has_peer:
            peer = per["peer"][key]
            ratios = [a / b for a, b in zip(cf, peer)]
            line += [f"{statistics.median(peer):{fmt}}", f"{statistics.median(ratios):.2f}x", f"{min(ratios):.2f}-{max(ratios):.2f}x"]
        else:
            line += ["-", "-", "-"]
        lines.append(line)
    return lines, checks


def parse_long(text: str, keys: list[str], error) -> dict[str, int]:
    """`--long`: one step count for every row ("160"), or per row ("small-frozen=160,sd15=1210"), so that
    lengthening one row's runs does not shorten another's below its default."""
    if not text:
        return {}
    if text.isdigit():
        return dict.fromkeys(keys, int(text))
    out = {}
    for part in text.split(","):
        key, _, steps = part.partition("=")
        if key not in ROWS or not steps.isdigit() or int(steps) < 1:
            error(f"--long {part!r}: write N, or ROW=N with a row from {', '.join(ROWS)} and N >= 1")
        out[key] = int(steps)
    return out


def run_row(key: str, row: Row, work: Path, args, peer: dict | None) -> tuple[list[list[str]], list[str]]:
    model = build_model(row.model, work / row.model)
    dataset, longest = build_dataset(work / f"dataset-{row.resolution}", row.resolution, COVERS, tokenizers_of(model))
    long_steps = args.long_by_row.get(key) or (6 if args.quick else row.long_steps)
    own = f" ({llm_tokens(model, dataset)} in the model's own tokenizer)" if row.family in FLOW_FAMILIES else ""
    print(f"\n## {row.title}: {COVERS} covers, longest prompt {longest} CLIP tokens{own}; {args.short} and {long_steps} steps, "
          f"{args.pairs} pair(s)", flush=True)
    if row.compiles:
        # torch.compile keeps what it compiled on disk (torchinductor's cache), so only a machine's first
        # compiled run pays the whole compile; one untimed run fills the cache, and its start-up is shown.
        r = run_coverforge(work / "runs" / f"{key}-coverforge-warm-up", model, row.family, dataset, row.resolution, args.short,
                           row.text_lora, args.threads, settings=row.settings)
        print(f"  warm-up    coverforge {args.short:>4} steps: wall {r.wall_s:6.1f} s, launch to first step {r.first_step_s:.1f} s "
              f"(compiling; a cold torchinductor cache takes longest), peak {r.peak_mb:5.0f} MB", flush=True)
    pairs = []
    for i in range(args.pairs):
        order = ["coverforge", "peer"][:: 1 if i % 2 == 0 else -1] if peer else ["coverforge"]
        done: dict[str, list[Run]] = {side: [] for side in order}
        for steps in (args.short, long_steps):
            for side in order:
                folder = work / "runs" / f"{key}-{side}-{steps}"
                if side == "coverforge":
                    r = run_coverforge(folder, model, row.family, dataset, row.resolution, steps, row.text_lora, args.threads,
                                       settings=row.settings)
                else:
                    r = run_peer(folder, peer["python"], peer["dir"] / row.script, peer["dir"] / "tvshim", model, dataset,
                                 row.resolution, steps, row.text_lora, args.threads)
                done[side].append(r)
                print(f"  pair {i + 1} {side:<10} {steps:>4} steps: wall {r.wall_s:6.1f} s, peak {r.peak_mb:5.0f} MB", flush=True)
        pairs.append({side: tuple(rs) for side, rs in done.items()})
    return summarise(row, pairs, peer is not None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated: {', '.join(ROWS)}")
    ap.add_argument("--pairs", type=int, default=0, help="alternating pairs per row (default 3; 1 with --quick)")
    ap.add_argument("--short", type=int, default=0, help="steps of the short run (default 10; 2 with --quick)")
    ap.add_argument("--long", default="", help="steps of the long run: N for every row, or ROW=N,ROW=N for the rows named "
                    "(the others keep theirs; default per row: 610 tiny SDXL and SD 1.5, 1210 sd15-compile, 110 small SDXL, 1810 tiny Qwen-Image "
                    "and Z-Image; 6 with --quick)")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for both sides")
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny step counts, one pair; checks every row runs, measures nothing")
    ap.add_argument("--work", help="folder for models, datasets and runs, reused when given (default: a temporary folder)")
    ap.add_argument("--peers", type=Path, default=REPO.parent / "shared" / "peers", help="folder with the peer scripts and tvshim/")
    ap.add_argument("--peer-python", type=Path, default=REPO.parent / "peer-venv" / "bin" / "python", help="the peer venv's python")
    args = ap.parse_args()
    args.pairs = args.pairs or (1 if args.quick else 3)
    args.short = args.short or (2 if args.quick else 10)
    keys = [k for k in args.rows.split(",") if k]
    unknown = [k for k in keys if k not in ROWS]
    if unknown:
        ap.error(f"unknown row {unknown[0]}; choose from {', '.join(ROWS)}")
    args.long_by_row = parse_long(args.long, keys, ap.error)
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {machine_line()}\ncommit: {commit}; threads {args.threads}; python {sys.executable} vs {args.peer_python}")
    missing = peer_missing(args.peer_python, args.peers, {ROWS[k].script for k in keys})
    if missing:
        print(missing)
    peer = None if missing else {"python": args.peer_python, "dir": args.peers}
    print("\n" + DIFFERENCES)
    started = time.perf_counter()
    lines, checks = [], []
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for key in keys:
            row_lines, row_checks = run_row(key, ROWS[key], work, args, peer)
            print("\n" + table(HEADER, row_lines) + "\n" + "\n".join(row_checks), flush=True)  # kept if a later row fails
            lines += row_lines
            checks += row_checks
    print(f"\n### coverforge against diffusers' examples ({args.threads} thread(s); median of {args.pairs} alternating pair(s); "
          f"ratio = coverforge / peer: above 1 is better for images/s, below 1 for the others)\n")
    print(table(HEADER, lines))
    print("\nPeer time to first step: the first tqdm update showing n >= 1 steps, timed as it arrives, less n - 1 steady "
          "step times (tqdm redraws at most every 0.1 s). coverforge's is its own logs/process-0.json first_step_time.")
    print("\n".join(checks))
    if args.quick:
        print("\n--quick: a smoke run; its few steps are below the start-up noise, so the figures above measure nothing.")
    print(f"\ntotal {time.perf_counter() - started:.0f} s; {machine_line()}")


if __name__ == "__main__":
    main()
