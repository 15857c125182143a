"""Prepare throughput (images/s: full decode + checks + resize + hashes + write) with 1 and 2 workers.

    .venv/bin/python benchmarks/bench_prepare.py [--n 2000] [--max-side 768]

Generates --n textured synthetic covers (JPEG, 300x450 .. 1000x1500, quality 90) and a Goodreads-
style catalogue in a temp dir, then times `prepare_catalogue` with workers=1 and workers=2.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from coverforge.data.prepare import PrepareOptions, prepare_catalogue

HEADER = ["book_authors", "book_desc", "book_title", "genres", "image_url"]
GENRES = ["Fantasy", "Romance", "Horror", "Mystery", "Science Fiction", "History", "Poetry", "Young Adult"]


def make_cover(rng: np.random.Generator, noise: np.ndarray) -> Image.Image:
    """Colour blobs at low resolution, upscaled, plus fine noise: decodes like a real cover, not a flat fill."""
    w = int(rng.integers(300, 1001))
    h = int(w * rng.uniform(1.45, 1.6))
    coarse = rng.integers(0, 256, size=(max(2, h // 40), max(2, w // 40), 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
    oy, ox = rng.integers(0, noise.shape[0] - h), rng.integers(0, noise.shape[1] - w)
    img = img + noise[oy : oy + h, ox : ox + w]
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def generate(root: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 12, size=(1700, 1100, 1)).astype(np.int16)
    images = root / "covers"
    images.mkdir(parents=True)
    rows = []
    for i in range(n):
        make_cover(rng, noise).save(images / f"{i}.jpg", quality=90)
        rows.append([f"Author {i}", f"Description of book {i}.", f"Book {i}", f"{GENRES[i % len(GENRES)]}|Fiction", ""])
    catalogue = root / "book_data.csv"
    with open(catalogue, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return catalogue, images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="number of synthetic covers")
    ap.add_argument("--max-side", type=int, default=768, help="stored long side (forces a resize); 0 keeps originals")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        catalogue, images = generate(root, args.n)
        mb = sum(p.stat().st_size for p in images.iterdir()) / 1e6
        print(f"generated {args.n} covers ({mb:.0f} MB of JPEG) in {time.perf_counter() - t0:.1f} s")
        # Untimed warm-up so lazy imports (scipy.fft, codecs) do not count against the first setting.
        warm = root / "warm.csv"
        warm.write_text("\n".join(catalogue.read_text(encoding="utf-8").splitlines()[:21]) + "\n", encoding="utf-8")
        prepare_catalogue(warm, PrepareOptions(out=root / "warm", images=images, max_side=args.max_side or None))
        rates, cpu_ms = {}, {}
        for workers in args.workers:
            options = PrepareOptions(out=root / f"out{workers}", images=images, workers=workers,
                                     max_side=args.max_side or None, min_size=256)
            t0, c0 = time.perf_counter(), _cpu()
            report = prepare_catalogue(catalogue, options)
            seconds = time.perf_counter() - t0
            rates[workers] = args.n / seconds
            cpu_ms[workers] = (_cpu() - c0) / args.n * 1000
            print(f"workers={workers}: kept {report.kept}, skipped {len(report.skipped)}, {seconds:.1f} s")
    base = rates[args.workers[0]]
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other processes compete for the cores)")
    print(f"| workers | images/s | ratio vs workers={args.workers[0]} | CPU ms/image |\n| ---: | ---: | ---: | ---: |")
    for workers, rate in rates.items():
        print(f"| {workers} | {rate:.1f} | {rate / base:.2f}x | {cpu_ms[workers]:.0f} |")


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (the worker processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


if __name__ == "__main__":
    main()
