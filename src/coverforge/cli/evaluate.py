"""`coverforge evaluate`: reference statistics once, then CLIP score, FID/KID and colour health.

    coverforge evaluate reference DATASET/validation --out REF [--extractor inception --weights FILE]
    coverforge evaluate IMAGES_DIR --dataset DATASET/validation [--reference REF] [--clip-model PATH] --out REPORT
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="'reference' to compute reference statistics, or a folder of generated images with metadata.jsonl")
    p.add_argument("split", nargs="?", help="with 'reference': the dataset split folder (e.g. DATASET/validation)")
    p.add_argument("--out", required=True, help="folder to write (reference statistics or the report)")
    p.add_argument("--dataset", help="dataset split the images are compared with (reference computed here when --reference is absent)")
    p.add_argument("--reference", help="folder written by `coverforge evaluate reference`")
    p.add_argument("--extractor", default="inception", help="feature extractor for FID/KID: inception, clip, or none (default inception)")
    p.add_argument("--weights", help="Inception weights file (weights-inception-2015-12-05-6726825d.pth)")
    p.add_argument("--clip-model", help="local CLIP model folder, for CLIP score and the clip extractor")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0, help="seed for KID subset sampling")
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--kid-subset-size", type=int, default=1000)
    p.add_argument("--grid-per-genre", type=int, default=8, help="images per genre in the report grids")


def run(args: argparse.Namespace) -> int:
    from coverforge.errors import CoverforgeError
    from coverforge.evaluation.features import get_extractor

    extractor = None if args.extractor == "none" else get_extractor(args.extractor, args.weights, args.clip_model)
    if args.target == "reference":
        from coverforge.evaluation.reference import compute_reference

        if not args.split:
            raise CoverforgeError("usage: coverforge evaluate reference DATASET/validation --out REF")
        if extractor is None:
            raise CoverforgeError("--extractor none: reference statistics need a feature extractor")
        ref = compute_reference(args.split, extractor, args.out, args.batch_size)
        print(f"wrote reference statistics of {ref.stats.n} images ({extractor.identity}) to {args.out}")
        return 0
    return _evaluate_folder(args, extractor)


def _evaluate_folder(args: argparse.Namespace, extractor) -> int:
    from coverforge.errors import CoverforgeError
    from coverforge.evaluation.clip_score import load_clip
    from coverforge.evaluation.evaluate import evaluate_images
    from coverforge.evaluation.image_folder import iter_images, read_metadata
    from coverforge.evaluation.reference import compute_reference, load_reference
    from coverforge.evaluation.report import GridCollector, write_report

    if args.split:
        raise CoverforgeError(f"unexpected argument {args.split!r}: give one images folder")
    rows = read_metadata(args.target)
    reference = None
    if extractor is not None:
        if args.reference:
            reference = load_reference(args.reference, extractor)
        elif args.dataset:
            reference = compute_reference(args.dataset, extractor, f"{args.out}/reference", args.batch_size)
        else:
            raise CoverforgeError("FID/KID need --reference REF or --dataset DATASET/validation (or --extractor none)")
    clip = None
    if args.clip_model:
        missing = [r["file_name"] for r in rows if not r.get("text")]
        if missing:
            raise CoverforgeError(f"{args.target}/metadata.jsonl: {len(missing)} rows have no text (first: {missing[0]}); CLIP score needs the prompt")
        clip = load_clip(args.clip_model)
    collector = GridCollector(per_genre=args.grid_per_genre)
    result = evaluate_images(
        iter_images(args.target, rows), reference=reference, clip=clip, extractor=extractor, seed=args.seed,
        batch_size=args.batch_size, kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size, on_batch=collector,
    )
    out = write_report(result, args.out, grids=collector.grids())
    for name, fig in result["overall"].items():
        print(f"{name:20s} {fig['value']:.4f}  (n={fig['n']}, {fig['extractor']})")
    print(f"wrote {out}/report.html, report.md and metrics.json")
    return 0
