"""`coverforge train CONFIG.toml [section.field=value ...] --out RUN [--resume latest|PATH]`."""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="TOML config (see configs/)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=200")
    p.add_argument("--out", help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", help="'latest' or a checkpoint folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from coverforge.config import load_config

    cfg = load_config(args.config, args.overrides)  # before the heavy imports: config typos fail fast
    from coverforge.training.loop import train

    out = Path(args.out or Path("runs") / Path(args.config).stem)
    result = train(cfg, out, resume=args.resume, progress=not args.no_progress)
    if result.stopped_early:
        print(f"stopped by {result.stopped_early} at step {result.step}; resume: coverforge train {args.config} --out {out} --resume latest")
        return 0
    print(f"trained {result.step} steps; run folder: {out}")
    return 0
