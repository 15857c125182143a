"""`coverforge caption`: fill missing captions in a dataset with an image-to-text model (BLIP-style)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="dataset folder written by `coverforge prepare`")
    p.add_argument("--model", required=True, help="local folder of a transformers image-to-text model (e.g. BLIP)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--prefix", default="", help='text put before each caption, e.g. "Book cover. "')
    p.add_argument("--overwrite", action="store_true", help="recaption rows that already have text")
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    from coverforge.cli.checks import in_range
    from coverforge.data.captions import caption_dataset

    in_range("--batch-size", args.batch_size, 1)
    in_range("--max-new-tokens", args.max_new_tokens, 1)
    n = caption_dataset(args.dataset, args.model, args.batch_size, args.max_new_tokens, args.prefix, args.overwrite, args.device)
    print(f"captioned {n} images in {args.dataset}")
    return 0
