"""Seconds of OCR per cover at ebook size (1600 x 2560): the lettering check's cost.

    .venv/bin/python benchmarks/bench_ocr.py [--covers 6]

Covers are typeset on the demo's procedural art (one genre after another, classic and band
layouts alternating) before timing. Each cover is timed three ways: the full-size read-back, the
160-px thumbnail read-back (rapidocr scales a small image up to 736 px before detection, so it
costs about as much), and the stray-text pass over the raw 832 x 1248 art (SDXL's 2:3 bucket).
Engine start-up (model load and the first read) is timed once; onnxruntime uses every core.
Median and range over the covers.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--covers", type=int, default=6)
    args = parser.parse_args()

    from coverforge.covers import ocr
    from coverforge.covers.compose import make_cover
    from coverforge.covers.legibility import _front, _read_roles, _read_thumbnail
    from coverforge.covers.stray_text import find_stray_text
    from coverforge.demo.art import paint_cover
    from coverforge.demo.catalogue import GENRES

    rng = np.random.default_rng(0)
    arts = [paint_cover(GENRES[i % len(GENRES)], rng, (832, 1248)) for i in range(args.covers)]
    covers = [make_cover(art, "The Salt Road", "Mara Ellison", size="ebook", layout=("classic", "band")[i % 2]) for i, art in enumerate(arts)]
    start = time.perf_counter()
    ocr.ocr_engine()
    find_stray_text(arts[0])  # the first read loads the detector and recogniser sessions
    load = time.perf_counter() - start
    timings: dict[str, list[float]] = {"full size (1600x2560)": [], "thumbnail (160 px)": [], "raw art stray text (832x1248)": []}
    misread = 0
    for art, cover in zip(arts, covers):
        image, lines = _front(cover)
        t0 = time.perf_counter()
        full = _read_roles(image, lines, 1.0)
        t1 = time.perf_counter()
        _read_thumbnail(image, lines, 160)
        t2 = time.perf_counter()
        find_stray_text(art)
        t3 = time.perf_counter()
        misread += not full["title"].reads
        for (name, values), seconds in zip(timings.items(), (t1 - t0, t2 - t1, t3 - t2)):
            values.append(seconds)
    print(f"engine start and first read: {load:.2f} s (once per process)")
    for name, values in timings.items():
        print(f"{name:30s} median {statistics.median(values):.2f} s per cover (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})")
    print(f"titles read back at full size: {len(covers) - misread} of {len(covers)}")


if __name__ == "__main__":
    main()
