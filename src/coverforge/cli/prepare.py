"""`coverforge prepare`: catalogue CSV (or image folder) -> imagefolder dataset with prompts, split and report."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("catalogue", nargs="?", help="catalogue CSV (Goodreads best-books schema, or map columns)")
    p.add_argument("--from-folder", metavar="DIR", help="image folder with metadata.jsonl, image_captions.json or .txt captions")
    p.add_argument("--out", required=True, help="dataset folder to write")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--images", metavar="DIR", help="folder with the covers (<row>.jpg, images/images/<row>.jpg, or names)")
    src.add_argument("--download", action="store_true", help="download covers from the image_url column (resumable)")
    p.add_argument("--columns", help="field=Column,... e.g. title=Name,authors=Writer,image=CoverFile,image_url=Link")
    p.add_argument("--min-size", type=int, default=256, help="shorter side in pixels (default 256)")
    p.add_argument("--orientation", choices=["portrait", "landscape", "any"], default="portrait")
    p.add_argument("--grayscale-threshold", type=float, default=None, help="colourfulness below which a cover is grayscale")
    p.add_argument("--keep-grayscale", action="store_true", help="keep grayscale covers")
    p.add_argument("--near-duplicate-distance", type=int, default=6, help="hash bits (of 64); -1: exact duplicates only")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--template", metavar="FILE", help="prompt template file (str.format over title, authors, author, publisher, genres, description)")
    p.add_argument("--max-side", type=int, default=None, help="downscale stored images so the long side is <= N")
    p.add_argument("--workers", type=int, default=1, help="processes for decoding and checking covers")
    p.add_argument("--download-workers", type=int, default=8, help="concurrent downloads")
    p.add_argument("--download-timeout", type=float, default=20.0)
    p.add_argument("--allow-outside-paths", action="store_true",
                   help="read covers that a path column (../, absolute) or a symlink places outside the given folders")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from coverforge.cli.checks import in_range
    from coverforge.data.catalogue import parse_columns
    from coverforge.data.colour import GRAYSCALE_THRESHOLD
    from coverforge.data.fetch import FetchOptions
    from coverforge.data.prepare import PrepareOptions, prepare_catalogue, prepare_folder
    from coverforge.data.text_files import read_text
    from coverforge.errors import CoverforgeError

    if bool(args.catalogue) == bool(args.from_folder):
        raise CoverforgeError("give a catalogue CSV or --from-folder DIR (one of them)")
    in_range("--min-size", args.min_size, 1)
    in_range("--max-side", args.max_side, 1)
    in_range("--grayscale-threshold", args.grayscale_threshold, 0)
    in_range("--near-duplicate-distance", args.near_duplicate_distance, -1, 64)
    in_range("--val-fraction", args.val_fraction, 0, 1, high_open=True)
    in_range("--workers", args.workers, 1)
    in_range("--download-workers", args.download_workers, 1)
    in_range("--download-timeout", args.download_timeout, 0, low_open=True)
    template = read_text(args.template, "--template").strip() if args.template else None
    options = PrepareOptions(
        out=Path(args.out),
        images=Path(args.images) if args.images else None,
        download=args.download,
        columns=parse_columns(args.columns),
        min_size=args.min_size,
        orientation=args.orientation,
        grayscale_threshold=GRAYSCALE_THRESHOLD if args.grayscale_threshold is None else args.grayscale_threshold,
        keep_grayscale=args.keep_grayscale,
        near_duplicate_distance=None if args.near_duplicate_distance < 0 else args.near_duplicate_distance,
        val_fraction=args.val_fraction,
        seed=args.seed,
        template=template,
        max_side=args.max_side,
        workers=args.workers,
        fetch=FetchOptions(workers=args.download_workers, timeout=args.download_timeout),
        allow_outside=args.allow_outside_paths,
    )
    if args.from_folder:
        report = prepare_folder(Path(args.from_folder), options)
    else:
        report = prepare_catalogue(Path(args.catalogue), options)
    print(
        f"{report.rows} rows: kept {report.kept} (train {report.train}, validation {report.validation}), "
        f"skipped {len(report.skipped)}; see {options.out / 'report.md'}"
    )
    for reason, n in report.reasons().items():
        print(f"  skipped {n:>6}  {reason}")
    return 0
