"""`coverforge demo`: synthetic catalogue -> dataset -> training -> covers -> report, offline."""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="run folder (default runs/demo)")
    p.add_argument("--quick", action="store_true", help="about four minutes: fewer books and steps")
    p.add_argument("--minutes", type=float, default=0.0, help="stop training after this many minutes")
    p.add_argument("--steps", type=int, default=0, help="training steps (default: the shipped config's)")
    p.add_argument("--books", type=int, default=360, help="books in the synthetic catalogue")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue a demo whose training was stopped, from its latest checkpoint")
    p.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. train.batch_size=8")


def run(args: argparse.Namespace) -> int:
    from coverforge.cli.checks import in_range, output_folder
    from coverforge.config import TRAIN_SEED_MAX
    from coverforge.demo.catalogue import GENRES
    from coverforge.demo.pipeline import DemoOptions, run_demo

    in_range("--minutes", args.minutes, 0)
    in_range("--steps", args.steps, 0)
    in_range("--books", args.books, 2 * len(GENRES))  # a training and a held-out cover per genre at the least
    in_range("--seed", args.seed, 0, TRAIN_SEED_MAX)
    output_folder(args.out)
    opts = DemoOptions(out=args.out, n_books=args.books, seed=args.seed, steps=args.steps, minutes=args.minutes,
                       quick=args.quick, overrides=args.overrides, resume=args.resume)
    result = run_demo(opts)
    o = result.metrics["overall"]
    chance = result.metrics["demo"]["chance"]
    print(f"\ngenre alignment of generated covers: {o['genre_alignment']['value']:.1%} (chance {chance:.1%}, n={o['genre_alignment']['n']})")
    print(f"real held-out covers judged correctly: {o['genre_alignment_real_covers']['value']:.1%}")
    print(f"Frechet distance (judge features): {o['frechet_judge']['value']:.3f}; grayscale rate: {o['grayscale_rate']['value']:.1%}")
    print(f"report: {result.report}")
    return 0
