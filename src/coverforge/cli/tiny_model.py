"""`coverforge tiny-model`: a tiny random model in the diffusers layout, for offline dry runs."""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    # Listed here, not imported from models.tiny, so that parsing stays free of torch.
    p.add_argument("--family", required=True, choices=["sd15", "sd2", "sdxl", "qwen-image", "z-image"])
    p.add_argument("--out", required=True, help="folder to write (created)")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from coverforge.models.tiny import write_tiny_model

    out = write_tiny_model(args.family, args.out, seed=args.seed)
    print(f"wrote tiny {args.family} model to {out}")
    return 0
