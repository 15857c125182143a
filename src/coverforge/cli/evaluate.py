"""`coverforge evaluate`: reference statistics once, then CLIP score, FID/KID and colour health.

    coverforge evaluate reference DATASET/validation --out REF [--extractor inception --weights FILE]
    coverforge evaluate IMAGES_DIR --dataset DATASET/validation [--reference REF] [--clip-model PATH] --out REPORT
    coverforge evaluate RUN --dataset DATASET/validation [--checkpoints all] [--compare-base] [--seeds 0..3] --out REPORT
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
    p.add_argument("--checkpoints", choices=["all", "final"], default="final", help="with a run folder: evaluate every checkpoint too")
    p.add_argument("--compare-base", action="store_true", help="with a run folder: evaluate the base model with the same seeds")
    p.add_argument("--seeds", default="0", help="with a run folder: seeds per validation book, e.g. 0..3")
    p.add_argument("--limit", type=int, default=0, help="with a run folder: only the first N validation books")
    p.add_argument("--grid-per-genre", type=int, default=8, help="images per genre in the report grids")
    p.add_argument("--lettering", action="store_true",
                   help="OCR each image: stray text in the raw art, the title as the model lettered it, and the title typeset "
                        "by `coverforge cover` read back (CER, word accuracy); needs `title` in the records")
    p.add_argument("--lettering-size", default="800x1280px", help="cover size the art is typeset at for --lettering")


def run(args: argparse.Namespace) -> int:
    from coverforge.cli import checks
    from coverforge.config import SEED_MAX
    from coverforge.errors import CoverforgeError
    from coverforge.evaluation.features import get_extractor

    checks.in_range("--batch-size", args.batch_size, 1)
    checks.in_range("--kid-subsets", args.kid_subsets, 1)
    checks.in_range("--kid-subset-size", args.kid_subset_size, 2)  # unbiased MMD pairs distinct images
    checks.in_range("--limit", args.limit, 0)
    checks.in_range("--grid-per-genre", args.grid_per_genre, 0)
    checks.in_range("--seed", args.seed, 0, SEED_MAX)
    checks.output_folder(args.out)
    if args.lettering:
        from coverforge.covers.sizes import parse_size

        parse_size(args.lettering_size)  # fails now, not after the first image
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
    from coverforge.sampling.from_run import is_run_folder

    if is_run_folder(args.target):
        return _evaluate_run(args, extractor)
    return _evaluate_folder(args, extractor)


def _reference(args: argparse.Namespace, extractor):
    from coverforge.errors import CoverforgeError
    from coverforge.evaluation.reference import compute_reference, load_reference

    if extractor is None:
        return None
    if args.reference:
        return load_reference(args.reference, extractor)
    if args.dataset:
        return compute_reference(args.dataset, extractor, f"{args.out}/reference", args.batch_size)
    raise CoverforgeError("FID/KID need --reference REF or --dataset DATASET/validation (or --extractor none)")


def _lettering(args: argparse.Namespace):
    from coverforge.evaluation.lettering import LetteringCheck

    return LetteringCheck(args.lettering_size) if args.lettering else None


def _evaluate_run(args: argparse.Namespace, extractor) -> int:
    from coverforge.errors import CoverforgeError
    from coverforge.evaluation.clip_score import load_clip
    from coverforge.evaluation.image_folder import read_metadata
    from coverforge.evaluation.report import write_report
    from coverforge.evaluation.runs import evaluate_run_folder, parse_seeds

    if not args.dataset:
        raise CoverforgeError("evaluating a run needs --dataset DATASET/validation: the books to generate")
    records = read_metadata(args.dataset)[: args.limit or None]
    metrics, grids, history = evaluate_run_folder(
        args.target, records, parse_seeds(args.seeds), checkpoints=args.checkpoints == "all", compare_base=args.compare_base,
        reference=_reference(args, extractor), clip=load_clip(args.clip_model) if args.clip_model else None, extractor=extractor,
        seed=args.seed, kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size, lettering=_lettering(args),
    )
    out = write_report(metrics, args.out, grids=grids, history=history)
    for row in metrics.get("comparison", {}).get("rows", []):
        print("  ".join(str(v) if not isinstance(v, float) else f"{v:.4f}" for v in row))
    print(f"wrote {out}/report.html, report.md and metrics.json")
    return 0


def _evaluate_folder(args: argparse.Namespace, extractor) -> int:
    from coverforge.errors import CoverforgeError
    from coverforge.evaluation.clip_score import load_clip
    from coverforge.evaluation.evaluate import evaluate_images
    from coverforge.evaluation.image_folder import iter_images, read_metadata
    from coverforge.evaluation.report import GridCollector, write_report

    if args.split:
        raise CoverforgeError(f"unexpected argument {args.split!r}: give one images folder")
    rows = read_metadata(args.target)
    reference = _reference(args, extractor)
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
        lettering=_lettering(args),
    )
    out = write_report(result, args.out, grids=collector.grids())
    for name, fig in result["overall"].items():
        print(f"{name:20s} {fig['value']:.4f}  (n={fig['n']}, {fig['extractor']})")
    print(f"wrote {out}/report.html, report.md and metrics.json")
    return 0
