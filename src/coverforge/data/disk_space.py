"""A full disk while `prepare` writes is an error for the whole run, never a per-cover skip.

Without this, every cover after the disk filled up would be reported as "processing failed" and
the run would end with exit code 0 and a dataset missing most of its covers.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from coverforge.errors import CoverforgeError

FULL = {errno.ENOSPC, errno.EDQUOT}


def is_full(error: BaseException) -> bool:
    """True for 'no space left' and 'quota exceeded': no later write can succeed either."""
    return isinstance(error, OSError) and error.errno in FULL


def human(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


@contextmanager
def full_disk_is_fatal(out: Path, needed: Callable[[], int]) -> Iterator[None]:
    """Turn a full disk anywhere inside the block into one CoverforgeError that says how much
    space the run needs (`needed()`, in bytes, asked only then) and how much is free."""
    try:
        yield
    except OSError as e:
        if not is_full(e):
            raise
        try:
            free = f", {human(shutil.disk_usage(_existing(out)).free)} free"
        except OSError:
            free = ""
        raise CoverforgeError(f"the disk holding {out} ran out of space ({e.strerror}): the covers need about "
                              f"{human(needed())} there{free}; free some space or choose another --out") from None


def files_size(paths) -> int:
    total = 0
    for p in paths:
        try:
            total += Path(p).stat().st_size
        except OSError:
            pass
    return total


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
