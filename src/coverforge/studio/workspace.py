"""The studio's workspace: the one folder it reads from and writes into.

Every path that comes in over HTTP is relative to the workspace and is resolved here, symlinks
followed, then refused unless it still lies inside; that is what stops `../` and a symlink that
points out of the workspace from reaching other files. The studio writes only under `studio/`.
"""

from __future__ import annotations

import os
from pathlib import Path

from coverforge.errors import CoverforgeError

OUTPUT_DIR = "studio"
"""Generations, covers, uploads and job logs, under the workspace."""
SEARCH_DEPTH = 3
"""How deep discovery looks for runs, models, datasets and configs."""
# Folders that never hold what discovery looks for and can be large.
SKIP_DIRS = {"checkpoints", "samples", "logs", "final", "node_modules", "__pycache__", "site-packages", "images"}


class OutsideWorkspace(CoverforgeError):
    """A path that is absolute or resolves outside the workspace (HTTP 403)."""


class NotFound(CoverforgeError):
    """A path inside the workspace, or a job, that does not exist (HTTP 404)."""


class Workspace:
    def __init__(self, root: str | Path):
        root = Path(root)
        if not root.is_dir():
            raise CoverforgeError(f"workspace {root} is not a folder: give --workspace an existing folder")
        self.root = root.resolve()

    @property
    def output(self) -> Path:
        return self.root / OUTPUT_DIR

    def path(self, rel: str, what: str = "path", must_exist: bool = True) -> Path:
        """`rel` (relative to the workspace) as an absolute path inside it, else one-line error."""
        if not isinstance(rel, str) or not rel.strip():
            raise CoverforgeError(f"{what} is empty: give a path inside the workspace")
        if "\x00" in rel or Path(rel).is_absolute() or rel.startswith(("/", "\\")):
            raise OutsideWorkspace(f"{what} {rel!r} must be relative to the workspace")
        # resolve() follows every symlink, so a link pointing out of the workspace lands outside.
        resolved = (self.root / rel).resolve()
        if not resolved.is_relative_to(self.root):
            raise OutsideWorkspace(f"{what} {rel!r} is outside the workspace")
        if must_exist and not resolved.exists():
            raise NotFound(f"{what} {rel!r} does not exist in the workspace")
        return resolved

    def rel(self, path: Path) -> str:
        """The workspace-relative POSIX form of a path inside the workspace."""
        return Path(path).resolve().relative_to(self.root).as_posix()

    def output_dir(self, kind: str, name: str) -> Path:
        folder = self.output / kind / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def walk(self, depth: int = SEARCH_DEPTH):
        """(folder, subfolder names, file names) down to `depth`, hidden and bulky folders skipped,
        symlinked folders not followed (they may lead out of the workspace)."""
        for folder, dirs, files in os.walk(self.root, followlinks=False):
            here = Path(folder)
            level = len(here.relative_to(self.root).parts)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and not (level == 0 and d == OUTPUT_DIR))
            if level >= depth:
                dirs[:] = []
            yield here, dirs, sorted(files)

    def run_folders(self) -> list[Path]:
        """Folders holding a training run's config.toml beside checkpoints/, logs/ or final/."""
        found = []
        from coverforge.run_folder import RunFolder

        for folder, _, _ in self.walk():
            run = RunFolder(folder)
            if run.is_run() and any(d.is_dir() for d in (run.checkpoints, run.logs, run.final)):
                found.append(folder)
        return found

    def model_folders(self) -> list[Path]:
        """Diffusers model folders (model_index.json) that are not a run's saved model."""
        return [folder for folder, _, files in self.walk() if "model_index.json" in files]

    def lora_files(self) -> list[Path]:
        """LoRA weights outside run folders (exported or downloaded .safetensors files)."""
        out = []
        for folder, _, files in self.walk():
            if "model_index.json" in files or "config.json" in files:
                continue
            out += [folder / f for f in files if f.endswith(".safetensors")]
        return out

    def configs(self) -> list[Path]:
        folder = self.root / "configs"
        return sorted(folder.glob("*.toml")) if folder.is_dir() else []

    def book_sources(self) -> list[Path]:
        """Prepared dataset splits (folders with metadata.jsonl) and catalogue CSVs."""
        out = []
        for folder, _, files in self.walk():
            if "metadata.jsonl" in files:
                out.append(folder)
            out += [folder / f for f in files if f.lower().endswith(".csv")]
        return out
