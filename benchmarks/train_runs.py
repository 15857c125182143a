"""What the training benchmarks share: a synthetic prepared dataset, the tiny and small SDXL, and
one `coverforge train` (or `coverforge cache`) per run in its own measured process.

Steady state = images between a record after warm-up and the last record of logs/metrics.jsonl,
over the time between them; start-up = command to the end of the first optimizer step.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tomli_w

from measured_process import PYTHON, child_env, machine_line, run_child
from small_models import write_small_sdxl

PROMPT_TOKENS = (200, 400)
COVER_SHAPES = [(256, 384), (256, 400), (240, 320), (288, 288), (384, 256), (256, 416)]
"""(width, height): 2:3 trade, 5:8 mass-market, 3:4, square audiobook, landscape, tall; all
differ in aspect so buckets have something to sort."""


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
        "data": {"dataset": str(dataset), "resolution": 128},
        "train": {"recipe": "lora", "batch_size": 4, "max_steps": steps, "seed": 0},
        "run": {"cache_dir": str(cache_dir), "log_every": 1, "log_with": "none", "checkpoint_every": 10 * steps,
                "checkpoints_total_limit": 1},
    }


def with_overrides(config: dict, overrides: dict[str, object]) -> dict:
    out = json.loads(json.dumps(config))
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        out.setdefault(section, {})[key] = value
    return out


def _count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


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


class Bench:
    """Training runs on one dataset, each in its own process, logs and configs under `work`."""

    def __init__(self, work: Path, dataset: Path, steps: int, warmup: int, threads: int):
        self.work, self.dataset, self.steps, self.warmup, self.threads = work, dataset, steps, warmup, threads
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

    def cache_dir(self, model_name: str) -> Path:
        return self.work / f"cache-{model_name}"


def add_run_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny model only, few steps and covers")
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps per training run (default 24; 6 with --quick)")
    ap.add_argument("--covers", type=int, default=0, help="dataset size (default 48; 16 with --quick)")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads per training process")
    ap.add_argument("--work", help="folder for dataset, models and runs (default: a temporary folder, removed)")


@contextlib.contextmanager
def workbench(args: argparse.Namespace) -> Iterator[tuple[Bench, dict[str, Path]]]:
    """The dataset, the models (tiny SDXL; the small one too unless --quick) and a Bench over them."""
    from coverforge.models.tiny import write_tiny_model

    steps = args.steps or (6 if args.quick else 24)
    covers = args.covers or (16 if args.quick else 48)
    print(f"machine: {machine_line()}")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        models = {"tiny": write_tiny_model("sdxl", work / "tiny-sdxl")}
        if not args.quick:
            models["small"] = write_small_sdxl(work / "small-sdxl")
        dataset, counts = make_dataset(work / "dataset", covers)
        warmup = max(2, steps // 3)
        print(f"dataset: {covers} covers in {len(COVER_SHAPES)} aspect ratios, prompts {min(counts)}-{max(counts)} CLIP tokens "
              f"(median {int(np.median(counts))}); {steps} steps per run, steady state from step {warmup}, {args.threads} threads")
        yield Bench(work, dataset, steps, warmup, args.threads), models
        print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at end {os.getloadavg()[0]:.2f}")
