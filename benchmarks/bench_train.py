"""Training throughput, start-up and peak memory: our default path against our no-cache path.

    .venv/bin/python benchmarks/bench_train.py [--quick] [--steps 24] [--threads 2]
    .venv/bin/python benchmarks/bench_train.py --paper-estimate [--utilisation 0.4]
    python benchmarks/bench_train.py --device cuda --real-sdxl [--batch 4]   # on a GPU machine

The default mode writes a synthetic prepared dataset (demo-catalogue covers of mixed aspect
ratios, 200-400-token prompts), a tiny and a small-but-proportioned SDXL (small_models.py), and
runs `coverforge train` in subprocesses at 128 px, batch 4, LoRA recipe:
  1. tiny and small SDXL x {default path, no cache + no buckets} x {frozen text encoders, LoRA on
     both text encoders}: steady-state images/s, peak RSS, start-up (command to first optimizer
     step) and the ratio to the uncached run;
  2. memory and speed switches on the small SDXL (default path, frozen encoders);
  3. VAE slicing/tiling: peak memory of encoding large covers, as the latent cache does;
  4. one process against two (Accelerate, gloo on CPU).
Each run is its own process, so its peak RSS is its own (wait4's rusage; per process for the
multi-process runs from /proc VmHWM). Steady state = images between a record after warm-up and
the last record of logs/metrics.jsonl, over the time between them.

`--device cuda --real-sdxl` times UNet training steps of the real-size SDXL-base UNet (random
weights, bf16 frozen weights, fp32 LoRA, conditioning as the cache would give it) at 1024x1024
with and without the memory savers; `--device cpu` runs the same code on the small UNet.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tomli_w
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from markdown import table  # noqa: E402
from small_models import write_small_sdxl  # noqa: E402
from unet_alone import paper_estimate, unet_step_bench  # noqa: E402

PROMPT_TOKENS = (200, 400)
COVER_SHAPES = [(256, 384), (256, 400), (240, 320), (288, 288), (384, 256), (256, 416)]
"""(width, height): 2:3 trade, 5:8 mass-market, 3:4, square audiobook, landscape, tall; all
differ in aspect so buckets have something to sort."""
PYTHON = sys.executable


# --- synthetic dataset -----------------------------------------------------------------------


def make_dataset(root: Path, n: int, seed: int = 0) -> tuple[Path, list[int]]:
    """A prepared dataset of `n` painted covers; returns the folder and every prompt's token count."""
    from coverforge.data.layout import write_metadata
    from coverforge.data.prompts import build_prompt
    from coverforge.demo.art import paint_cover
    from coverforge.demo.catalogue import GENRES, book_row
    from coverforge.models.tokenizer import build_clip_tokenizer

    tok = build_clip_tokenizer()
    folder = root / "train"
    folder.mkdir(parents=True, exist_ok=True)
    rows, counts = [], []
    for i in range(n):
        genre = GENRES[i % len(GENRES)]
        rng = np.random.default_rng([seed, i])
        book, description = book_row(rng, genre), ""
        prompt, tokens = "", 0
        # One blurb is 150+ tokens; add blurbs of the same genre until the prompt is long enough.
        while tokens < PROMPT_TOKENS[0]:
            description = (description + " " + book_row(rng, genre)["book_desc"]).strip()
            prompt = build_prompt({"title": book["book_title"], "authors": book["book_authors"].split("|"),
                                   "genres": book["genres"].split("|"), "description": description})
            tokens = len(tok(prompt, add_special_tokens=False, verbose=False).input_ids)
        words = prompt.split()
        while tokens > PROMPT_TOKENS[1]:
            words = words[: int(len(words) * 0.95)]
            prompt = " ".join(words)
            tokens = len(tok(prompt, add_special_tokens=False, verbose=False).input_ids)
        w, h = COVER_SHAPES[i % len(COVER_SHAPES)]
        paint_cover(genre, rng, (w, h)).save(folder / f"{i}.jpg", quality=90)
        rows.append({"file_name": f"{i}.jpg", "text": prompt, "primary_genre": genre, "width": w, "height": h})
        counts.append(tokens)
    write_metadata(folder, rows)
    return root, counts


# --- one training run in a subprocess ---------------------------------------------------------


@dataclasses.dataclass
class RunResult:
    name: str
    images_per_s: float
    peak_rss_mb: float
    """Largest resident set of any process of the run (wait4 rusage of the run's process tree)."""
    per_process_peak_mb: list[float]
    startup_s: float
    """Command to the end of the first optimizer step (process-0.json first_step_time)."""
    wall_s: float
    cache_before: int
    cache_after: int
    """Files in the cache folder before and after the run (both 0: the cache was not used)."""
    steps: int


def base_config(model: Path, dataset: Path, cache_dir: Path, steps: int) -> dict:
    return {
        "model": {"path": str(model), "family": "sdxl"},
        "data": {"dataset": str(dataset), "resolution": 128, "cache_dir": str(cache_dir)},
        "train": {"recipe": "lora", "batch_size": 4, "max_steps": steps, "log_every": 1, "log_with": "none",
                  "checkpoint_every": 10 * steps, "checkpoints_total_limit": 1, "seed": 0},
    }


def with_overrides(config: dict, overrides: dict[str, object]) -> dict:
    out = json.loads(json.dumps(config))
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        out.setdefault(section, {})[key] = value
    return out


def _count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def _hwm_mb(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else 0.0


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


# Fork + exec from a small process: Linux carries a process's peak RSS across exec, so a run
# started straight from this (torch-loaded) script would report at least this script's size.
_WRAPPER = ("import os, sys\npid = os.fork()\nif pid == 0:\n    os.execvp(sys.argv[2], sys.argv[2:])\n"
            "_, status, usage = os.wait4(pid, 0)\nopen(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
            "sys.exit(os.waitstatus_to_exitcode(status))")


def run_child(cmd: list[str], env: dict, log: Path, track_children: bool = False) -> tuple[int, float, dict[int, float], float]:
    """Run `cmd`; return (exit code, peak RSS MB over its tree, VmHWM MB per process, seconds).

    The wrapper's wait4 gives the run's own peak (the largest process of its tree, as
    RUSAGE_CHILDREN would); VmHWM polling splits it per process when the run is a launcher.
    """
    started = time.perf_counter()
    maxrss_file = log.with_suffix(".maxrss")
    with open(log, "w") as out:
        proc = subprocess.Popen([PYTHON, "-S", "-c", _WRAPPER, str(maxrss_file), *cmd], env=env, stdout=out, stderr=subprocess.STDOUT)
        per_pid: dict[int, float] = {}
        while proc.poll() is None:
            if track_children:
                for child in _descendants(proc.pid):
                    per_pid[child] = max(per_pid.get(child, 0.0), _hwm_mb(child))
            time.sleep(0.1)
    peak = int(maxrss_file.read_text()) / 1024 if maxrss_file.exists() else float("nan")
    return proc.returncode, peak, per_pid, time.perf_counter() - started


def steady_images_per_s(records: list[dict], warmup: int) -> float:
    """(images_b - images_a) / (elapsed_b - elapsed_a) from the first record past warm-up to the last."""
    later = [r for r in records if r["step"] >= warmup]
    if len(later) < 2:
        raise RuntimeError(f"need two metric records at or after step {warmup}; got {len(later)}")
    a, b = later[0], later[-1]
    return (b["images"] - a["images"]) / (b["elapsed_s"] - a["elapsed_s"])


def train_command(config: Path, out: Path, processes: int, port: int) -> list[str]:
    tail = ["-m", "coverforge", "train", str(config), "--out", str(out), "--no-progress"]
    if processes == 1:
        return [PYTHON, *tail]
    # `--cpu` silently runs one process; ACCELERATE_USE_CPU + --multi_gpu runs gloo processes.
    return [PYTHON, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port), *tail]


def child_env(threads: int, processes: int = 1) -> dict:
    """`threads` per process. One is the default: on a shared 2-core machine, OpenMP threads that
    wait at barriers for a descheduled sibling made step times jump 10x between steps."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": str(threads)}
    if processes > 1:
        env["ACCELERATE_USE_CPU"] = "true"
    return env


class Bench:
    def __init__(self, work: Path, dataset: Path, steps: int, warmup: int, threads: int, repeats: int = 1):
        self.work, self.dataset, self.steps, self.warmup, self.threads = work, dataset, steps, warmup, threads
        self.repeats = repeats
        self.port = 29600

    def train(self, name: str, model: Path, cache_dir: Path, overrides: dict[str, object], processes: int = 1) -> RunResult:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        config = self.work / f"{slug}.toml"
        config.write_text(tomli_w.dumps(with_overrides(base_config(model, self.dataset, cache_dir, self.steps), overrides)))
        out = self.work / "runs" / slug
        self.port += 1
        before = _count_files(cache_dir)
        launched = time.time()
        rc, peak, per_pid, wall = run_child(train_command(config, out, processes, self.port), child_env(self.threads, processes),
                                            self.work / f"{slug}.log", track_children=processes > 1)
        if rc:
            raise RuntimeError(f"{name}: coverforge train exited {rc}; see {self.work / f'{slug}.log'}:\n"
                               + (self.work / f"{slug}.log").read_text()[-2000:])
        records = [json.loads(line) for line in (out / "logs" / "metrics.jsonl").read_text().splitlines()]
        first_step = json.loads((out / "logs" / "process-0.json").read_text())["first_step_time"]
        # Per process: the trainers are the descendants that grew past the launcher's size.
        trainers = sorted(per_pid.values(), reverse=True)[:processes] if processes > 1 else [peak]  # drops the launcher
        result = RunResult(name, steady_images_per_s(records, self.warmup), peak, trainers, first_step - launched, wall, before, _count_files(cache_dir), records[-1]["step"])
        print(f"  {name}: {result.images_per_s:.2f} images/s, peak {peak:.0f} MB, start-up {result.startup_s:.1f} s, "
              f"cache files {before}->{result.cache_after}, wall {wall:.0f} s", flush=True)
        return result

    def build_cache(self, name: str, model: Path, cache_dir: Path) -> tuple[float, float] | None:
        """`coverforge cache` on the default config: (seconds, peak MB), or None where it is not built."""
        probe = subprocess.run([PYTHON, "-m", "coverforge", "cache", "--help"], env=child_env(self.threads), capture_output=True)
        if probe.returncode != 0:
            return None
        config = self.work / f"cache-{name}.toml"
        config.write_text(tomli_w.dumps(base_config(model, self.dataset, cache_dir, self.steps)))
        rc, peak, _, wall = run_child([PYTHON, "-m", "coverforge", "cache", str(config), "--no-progress"], child_env(self.threads), self.work / f"cache-{name}.log")
        if rc:
            raise RuntimeError(f"coverforge cache exited {rc}; see {self.work / f'cache-{name}.log'}")
        return wall, peak


# --- tables ------------------------------------------------------------------------------------


def cache_state(result: RunResult, uncached_path: bool) -> str:
    if uncached_path:
        return "off"
    if not result.cache_after:
        return "on, NOT ACTIVE (no cache files)"
    new = result.cache_after - result.cache_before
    return f"on, built {new} shard files in the run" if new else f"on, read {result.cache_after} prebuilt files"


def throughput_section(bench: Bench, models: dict[str, Path]) -> list[RunResult]:
    paths = {"default": {}, "no cache, no buckets": {"data.cache": False, "data.buckets": False}}
    encoders = {"frozen": {}, "LoRA on both": {"train.train_text_encoder": True, "train.train_text_encoder_2": True}}
    rows, cache_rows, results = [], [], []
    for model_name, model in models.items():
        cache_dir = bench.work / f"cache-{model_name}"
        built = bench.build_cache(model_name, model, cache_dir)
        cache_rows.append([model_name, "`coverforge cache` before training" if built else "not built ahead (no `coverforge cache`)",
                           f"{built[0]:.1f}" if built else "-", f"{built[1]:.0f}" if built else "-"])
        for enc_name, enc in encoders.items():
            # The two paths alternate (A B A B ...): on a shared VM the machine's speed drifts by 10-20%
            # over minutes, and a ratio of neighbouring runs cancels most of that drift.
            runs: dict[str, list[RunResult]] = {name: [] for name in paths}
            for rep in range(bench.repeats):
                for path_name, path in paths.items():
                    suffix = f" #{rep + 1}" if bench.repeats > 1 else ""
                    runs[path_name].append(bench.train(f"{model_name} {path_name} TE {enc_name}{suffix}", model, cache_dir, {**path, **enc}))
            results += [r for rs in runs.values() for r in rs]
            base = runs["no cache, no buckets"]
            ratios = [a.images_per_s / b.images_per_s for a, b in zip(runs["default"], base)]
            for path_name, rs in runs.items():
                r = rs[-1]
                ratio = statistics.median(ratios) if path_name == "default" else 1.0
                spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if path_name == "default" and len(ratios) > 1 else ""
                rows.append([model_name, enc_name, path_name, cache_state(r, path_name != "default"),
                             f"{statistics.median(x.images_per_s for x in rs):.2f}", f"{ratio:.2f}x{spread}",
                             f"{max(x.peak_rss_mb for x in rs):.0f}", f"{statistics.median(x.startup_s for x in rs):.1f}"])
    print(f"\n### Throughput at 128 px, batch 4, LoRA (steady state; median of {bench.repeats} alternating runs per path)\n")
    print(table(["model", "text encoders", "path", "cache", "images/s", "vs uncached (range)", "peak RSS MB", "start-up s"], rows))
    print("\n### Cache build\n")
    print(table(["model", "how", "seconds", "peak RSS MB"], cache_rows))
    return results


SWITCHES: dict[str, dict[str, object]] = {
    "gradient checkpointing on": {"train.gradient_checkpointing": True},
    "attention eager": {"train.attention": "eager"},
    "compile_unet on": {"train.compile_unet": True},
    "mixed precision bf16": {"train.mixed_precision": "bf16"},
}


def savers_section(bench: Bench, model_name: str, model: Path, baseline: RunResult, switches: list[str]) -> None:
    rows = [["baseline (sdpa, no checkpointing, no compile, fp32)", f"{baseline.images_per_s:.2f}", "1.00x", f"{baseline.peak_rss_mb:.0f}", "1.00x"]]
    for name in switches:
        try:
            r = bench.train(f"{model_name} {name}", model, bench.work / f"cache-{model_name}", SWITCHES[name])
        except RuntimeError as e:
            rows.append([name, "failed", "-", "-", str(e).splitlines()[0][:120]])
            continue
        rows.append([name, f"{r.images_per_s:.2f}", f"{r.images_per_s / baseline.images_per_s:.2f}x", f"{r.peak_rss_mb:.0f}",
                     f"{r.peak_rss_mb / baseline.peak_rss_mb:.2f}x"])
    print(f"\n### Memory and speed switches, {model_name} SDXL, default path, frozen text encoders\n")
    print(table(["switch", "images/s", "vs baseline", "peak RSS MB", "vs baseline"], rows))
    print(f"\ntorch.compile on this CPU: {compile_probe(bench.threads)}")


def compile_probe(threads: int) -> str:
    """Whether inductor can compile and run a small module here (it needs a C++ toolchain)."""
    code = ("import torch; m = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.GELU()); "
            "c = torch.compile(m); x = torch.randn(8, 64); assert torch.allclose(c(x), m(x), atol=1e-5); print('ok')")
    done = subprocess.run([PYTHON, "-c", code], env=child_env(threads), capture_output=True, text=True, timeout=600)
    if done.returncode == 0:
        return "works (inductor compiled and ran a Linear+GELU)"
    last = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return "FAILS: " + (last[-1] if last else f"exit {done.returncode}")


def vae_section(bench: Bench, model: Path, size: tuple[int, int], batch: int) -> None:
    rows = []
    for slicing, tiling in ((False, False), (True, False), (False, True), (True, True)):
        log = bench.work / f"vae-{int(slicing)}{int(tiling)}.log"
        cmd = [PYTHON, __file__, "--vae-worker", str(model), "--vae-size", f"{size[0]}x{size[1]}", "--batch", str(batch)]
        cmd += ["--slicing"] * slicing + ["--tiling"] * tiling
        rc, peak, _, wall = run_child(cmd, child_env(bench.threads), log)
        if rc:
            raise RuntimeError(f"VAE worker exited {rc}; see {log}")
        encode_s = float(re.search(r"encode_s=([\d.]+)", log.read_text()).group(1))
        rows.append(["on" if slicing else "off", "on" if tiling else "off", f"{encode_s:.1f}", f"{peak:.0f}"])
    base = float(rows[0][3])
    for row in rows:
        row.append(f"{float(row[3]) / base:.2f}x")
    print(f"\n### VAE encoding for the latent cache: small SDXL VAE, {batch} covers of {size[0]}x{size[1]} px per batch\n")
    print(table(["slicing", "tiling", "encode s", "peak RSS MB", "vs off/off"], rows))


def vae_worker(model: str, size: str, batch: int, slicing: bool, tiling: bool) -> None:
    """Child process: encode one batch of covers as the cache does; the parent reads our peak RSS."""
    from diffusers import AutoencoderKL

    w, h = (int(v) for v in size.split("x"))
    vae = AutoencoderKL.from_pretrained(Path(model) / "vae").eval()
    if slicing:
        vae.enable_slicing()
    if tiling:
        vae.enable_tiling()
    pixels = torch.rand(batch, 3, h, w, generator=torch.Generator().manual_seed(0)) * 2 - 1
    started = time.perf_counter()
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mean
    print(f"latents={tuple(latents.shape)} encode_s={time.perf_counter() - started:.3f}")


def multiprocess_section(bench: Bench, models: dict[str, Path]) -> None:
    rows = []
    for model_name, model in models.items():
        one = bench.train(f"{model_name} 1 process", model, bench.work / f"cache-{model_name}", {}, processes=1)
        two = bench.train(f"{model_name} 2 processes", model, bench.work / f"cache-{model_name}", {}, processes=2)
        for r, n in ((one, 1), (two, 2)):
            rows.append([model_name, n, bench.threads, f"{r.images_per_s:.2f}", f"{r.images_per_s / one.images_per_s:.2f}x",
                         " / ".join(f"{m:.0f}" for m in r.per_process_peak_mb), f"{r.peak_rss_mb:.0f}", f"{r.startup_s:.1f}"])
    print("\n### Data-parallel processes (default path, frozen text encoders, batch 4 per process)\n")
    print(table(["model", "processes", "threads each", "global images/s", "vs 1 process", "VmHWM MB per process", "peak RSS MB (wait4)", "start-up s"], rows))


# --- main ----------------------------------------------------------------------------------------


def machine_line() -> str:
    load = os.getloadavg()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} CPU cores ({platform.machine()}), {mem:.0f} GiB, torch {torch.__version__}; "
            f"load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1-2 minute smoke run: tiny model, few steps, fewer rows")
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps per training run (default 24; 6 with --quick)")
    ap.add_argument("--covers", type=int, default=0, help="dataset size (default 48; 16 with --quick)")
    ap.add_argument("--repeats", type=int, default=1, help="throughput: alternating runs per path; the ratio is the median of neighbouring pairs")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads per training process")
    ap.add_argument("--sections", default="throughput,savers,vae,multiprocess",
                    help="comma-separated sections to run (savers without throughput runs its own baseline)")
    ap.add_argument("--skip-compile-run", action="store_true", help="probe torch.compile only; no compile_unet training run")
    ap.add_argument("--work", help="folder for dataset, models and runs (default: a temporary folder, removed)")
    ap.add_argument("--paper-estimate", action="store_true", help="print the H100 paper estimate for the real SDXL UNet and exit")
    ap.add_argument("--utilisation", type=float, default=0.4, help="fraction of H100 bf16 peak for --paper-estimate")
    ap.add_argument("--device", help="time UNet training steps on this device (cuda or cpu) and exit")
    ap.add_argument("--real-sdxl", action="store_true", help="with --device: the real-size SDXL-base UNet at 1024 px")
    ap.add_argument("--batch", type=int, default=0, help="batch for --device / --paper-estimate / VAE worker (default 4; 1 for --real-sdxl)")
    ap.add_argument("--vae-worker", help=argparse.SUPPRESS)
    ap.add_argument("--vae-size", help=argparse.SUPPRESS)
    ap.add_argument("--slicing", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tiling", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.vae_worker:
        return vae_worker(args.vae_worker, args.vae_size, args.batch or 4, args.slicing, args.tiling)
    if args.paper_estimate:
        return paper_estimate(args.utilisation, args.batch or 1)
    if args.device:
        torch.set_num_threads(args.threads)
        return unet_step_bench(args.device, args.real_sdxl, args.batch or (1 if args.real_sdxl else 4),
                               steps=args.steps or (3 if args.quick else 10), warmup=2, compile_run=not args.skip_compile_run)

    steps = args.steps or (6 if args.quick else 24)
    covers = args.covers or (16 if args.quick else 48)
    print(f"machine: {machine_line()}")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        from coverforge.models.tiny import write_tiny_model

        models = {"tiny": write_tiny_model("sdxl", work / "tiny-sdxl"), "small": write_small_sdxl(work / "small-sdxl")}
        dataset, counts = make_dataset(work / "dataset", covers)
        print(f"dataset: {covers} covers in {len(COVER_SHAPES)} aspect ratios, prompts {min(counts)}-{max(counts)} CLIP tokens "
              f"(median {int(np.median(counts))}); {steps} steps per run, steady state from step {max(2, steps // 3)}, "
              f"{args.threads} threads")
        bench = Bench(work, dataset, steps, warmup=max(2, steps // 3), threads=args.threads, repeats=args.repeats)
        # --quick: every section runs, on the tiny model and with fewer rows, to check the code paths.
        chosen = {"tiny": models["tiny"]} if args.quick else models
        sections = set(args.sections.split(","))
        savers_model = "tiny" if args.quick else "small"
        if "throughput" in sections:
            results = throughput_section(bench, chosen)
            # With --repeats the runs are named "... #1", "... #2": the savers compare against the last.
            baseline = [r for r in results if r.name.split(" #")[0] == f"{savers_model} default TE frozen"][-1]
        elif "savers" in sections or "multiprocess" in sections:
            for name, model in chosen.items():
                bench.build_cache(name, model, work / f"cache-{name}")
            baseline = bench.train(f"{savers_model} default TE frozen", chosen[savers_model], work / f"cache-{savers_model}", {})
        if "savers" in sections:
            switches = [s for s in SWITCHES if not (s == "compile_unet on" and (args.quick or args.skip_compile_run))]
            savers_section(bench, savers_model, chosen[savers_model], baseline, switches[:1] if args.quick else switches)
        if "vae" in sections:
            vae_section(bench, models["small"], (384, 576) if args.quick else (1024, 1536), 2 if args.quick else 4)
        if "multiprocess" in sections:
            multiprocess_section(bench, chosen)
        print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
