"""The `coverforge` command: one subcommand per stage, each in its own module under cli/.

Subcommand modules are imported only when chosen, so `coverforge --help` answers without
loading torch. Each module exposes `add_arguments(parser)` and `run(args) -> int`. Only the CLI
parses argv or exits; a CoverforgeError becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from coverforge import __version__
from coverforge.errors import CoverforgeError

# name -> (module under coverforge.cli, one-line help)
SUBCOMMANDS = {
    "prepare": ("prepare", "catalogue CSV or image folder -> dataset folder with prompts, splits and a report"),
    "caption": ("caption", "fill missing captions in a dataset with a captioning model"),
    "cache": ("cache", "precompute VAE latents and long-prompt text embeddings for a training config"),
    "train": ("train", "train a LoRA, a full fine-tune or a from-scratch model from a TOML config"),
    "export": ("export", "export a run's LoRA weights (diffusers or kohya format)"),
    "generate": ("generate", "generate cover art from prompts, a catalogue or a run folder"),
    "cover": ("cover", "typeset title and author on art at ebook or print size"),
    "evaluate": ("evaluate", "CLIP score, FID/KID, grayscale rate and a report"),
    "demo": ("demo", "end-to-end offline demo: synthetic catalogue -> training -> covers -> report"),
    "tiny-model": ("tiny_model", "write a tiny random model in the diffusers layout (sd15, sd2, sdxl, qwen-image, z-image)"),
    "studio": ("studio", "local web app: runs, candidates, covers and comparisons in the browser"),
}


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(prog="coverforge", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"coverforge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parsers = {}
    for name, (_, help_text) in SUBCOMMANDS.items():
        # add_help=False: the real parser is built after the module is imported.
        parsers[name] = sub.add_parser(name, help=help_text, add_help=False)
    return parser, parsers


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser, _ = build_parser()
    known, rest = parser.parse_known_args(argv)
    if known.command is None:
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.DEBUG if known.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    module_name, help_text = SUBCOMMANDS[known.command]
    try:
        module = importlib.import_module(f"coverforge.cli.{module_name}")
    except ModuleNotFoundError as e:
        if e.name != f"coverforge.cli.{module_name}":
            raise
        print(f"coverforge {known.command}: not built yet", file=sys.stderr)
        return 3
    sub = argparse.ArgumentParser(prog=f"coverforge {known.command}", description=help_text)
    module.add_arguments(sub)
    args = sub.parse_args(rest)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # Before CUDA starts: the allocator grows segments in place instead of caching fixed blocks, so
    # the steps' reserve stays near what their tensors hold (README, memory options; a user's own
    # setting wins).
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    try:
        return int(module.run(args) or 0)
    except CoverforgeError as e:
        print(f"coverforge {known.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"coverforge {known.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
