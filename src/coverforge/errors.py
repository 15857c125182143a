"""The one exception type for user mistakes; the CLI prints it as a single line and exits 2."""

from __future__ import annotations

import os
from pathlib import Path


class CoverforgeError(Exception):
    """A problem the user can fix: a bad config value, a missing file, an unusable model folder."""


class ConfigError(CoverforgeError):
    """A config field has a wrong type or value; the message names the dotted field."""


def require_writable(folder: Path, what: str, hint: str = "") -> None:
    """Create `folder` and prove a file can be written there, before any long work starts;
    otherwise one CoverforgeError naming `what` (e.g. "the run folder") and the hint."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"  # per process: several may start at once
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise CoverforgeError(f"cannot write {what} {folder}: {e.strerror}{hint}") from None
