"""Run a trainer in this process, as `python -m MODULE ...` or `python SCRIPT.py ...` would, so that a
profiler installed first (profile_phases.py, profile_memory.py) sees its calls. Standard library only:
the profilers run in the peer's venv too."""

from __future__ import annotations

import argparse
import os
import runpy
import sys


def add_target_argument(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("target", nargs=argparse.REMAINDER, help="-- -m MODULE ARGS... or -- SCRIPT.py ARGS...")


def target_of(ap: argparse.ArgumentParser, args) -> list[str]:
    target = args.target[1:] if args.target[:1] == ["--"] else args.target
    if not target:
        ap.error("name a trainer after --")
    return target


def run_trainer(target: list[str]) -> None:
    if target[0] == "-m":
        sys.argv = [target[1], *target[2:]]
        runpy.run_module(target[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(target)
        sys.path.insert(0, os.path.dirname(os.path.abspath(target[0])))
        runpy.run_path(target[0], run_name="__main__")
