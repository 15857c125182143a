"""`coverforge cache CONFIG.toml [section.field=value ...] [--prune]`: precompute a training
config's VAE latents and text embeddings (training does it too, for whatever is missing)."""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="the TOML training config the cache is for")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. run.cache_dir=/fast/disk")
    p.add_argument("--prune", action="store_true", help="drop entries the dataset no longer uses (replaced images, edited prompts)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from coverforge.config import load_config

    cfg = load_config(args.config, args.overrides)
    from coverforge.training.inputs import cache_for_config

    report = cache_for_config(cfg, progress=not args.no_progress, prune=args.prune)
    for line in report.lines():
        print(line)
    return 0
