"""Checks of command-line numbers and paths, run before a command does any work.

Each failure is one CoverforgeError line naming the flag and what it accepts; the numeric ranges
share their wording with the config's (`config.check_range`).
"""

from __future__ import annotations

from pathlib import Path

from coverforge.config import SEED_MAX, check_range
from coverforge.errors import CoverforgeError


def in_range(flag: str, value: float | None, low: float | None = None, high: float | None = None,
             low_open: bool = False, high_open: bool = False) -> None:
    """`value` of `flag` within [low, high]; None (a flag left out) passes."""
    if value is not None:
        check_range(flag, value, low, high, low_open, high_open, error=CoverforgeError)


def seed(flag: str, value: int, count: int = 1) -> None:
    """A torch seed, and so are the `count - 1` seeds after it (image i gets seed + i)."""
    in_range(flag, value, 0, SEED_MAX)
    if value + count - 1 > SEED_MAX:
        raise CoverforgeError(f"{flag} = {value}: {count} images need seeds up to {value + count - 1}, past {SEED_MAX} (2**64 - 1)")


def output_folder(path: str | Path, flag: str = "--out") -> Path:
    """A folder we may create or fill: not an existing file, not under one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CoverforgeError(f"{flag} {path} is an existing file; give a folder")
    _parents_are_folders(path, flag)
    return path


def output_file(path: str | Path, flag: str = "--out", suffixes: tuple[str, ...] = ()) -> Path:
    """A file we may write: not a folder, not under a file, with one of `suffixes` when given."""
    path = Path(path)
    if path.is_dir():
        raise CoverforgeError(f"{flag} {path} is a folder; give a file name")
    if suffixes and path.suffix.lower() not in suffixes:
        raise CoverforgeError(f"{flag} {path}: the file name must end in {', '.join(suffixes)}")
    _parents_are_folders(path, flag)
    return path


def _parents_are_folders(path: Path, flag: str) -> None:
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise CoverforgeError(f"{flag} {path}: {parent} is a file, not a folder")
            return
