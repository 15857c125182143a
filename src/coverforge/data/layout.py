"""The dataset folder: Hugging Face `imagefolder` layout, `<split>/metadata.jsonl` beside the images,
and at the top how `prepare` made the prompts (`prompt_recipe.json`).

Every `file_name` is resolved inside its split folder; one that escapes it (`..`, an absolute
path, a symlink pointing out) is refused, so a crafted metadata file cannot make training read
arbitrary files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from coverforge.data.text_files import read_text
from coverforge.errors import CoverforgeError

SPLITS = ("train", "validation")
METADATA = "metadata.jsonl"
PROMPT_RECIPE = "prompt_recipe.json"
"""Beside the splits: the template and column map `prepare` built the prompts with (data/prompt_recipe.py)."""


def safe_file(split_dir: Path, file_name: object, where: str) -> Path:
    """Absolute path of file_name inside split_dir; CoverforgeError (naming `where`) if it escapes or is missing."""
    if not isinstance(file_name, str) or not file_name.strip() or "\x00" in file_name:
        raise CoverforgeError(f"{where}: file_name is missing or not a usable string")
    posix, windows = PurePosixPath(file_name), PureWindowsPath(file_name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        raise CoverforgeError(f"{where}: file_name {file_name!r} is an absolute path; use a path relative to {split_dir}")
    if ".." in posix.parts or ".." in windows.parts:
        raise CoverforgeError(f"{where}: file_name {file_name!r} leaves the split folder ('..')")
    root = split_dir.resolve()
    path = (split_dir / file_name).resolve()
    if path != root and root not in path.parents:
        raise CoverforgeError(f"{where}: file_name {file_name!r} points outside {split_dir} (symlink?)")
    if not path.is_file():
        raise CoverforgeError(f"{where}: image {file_name!r} does not exist in {split_dir}")
    return path


def read_metadata(split_dir: str | Path, require_text: bool = True) -> list[dict]:
    """Rows of split_dir/metadata.jsonl, each validated and given an absolute `path`."""
    split_dir = Path(split_dir)
    meta = split_dir / METADATA
    if not meta.is_file():
        raise CoverforgeError(f"{meta} does not exist; run `coverforge prepare` to make a dataset")
    rows = []
    for number, line in enumerate(read_text(meta).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{meta}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise CoverforgeError(f"{where}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise CoverforgeError(f"{where}: each line must be a JSON object")
        text = row.get("text")
        if text is not None and not isinstance(text, str):
            raise CoverforgeError(f"{where}: text must be a string")
        if require_text and not (text or "").strip():
            raise CoverforgeError(f"{where}: missing text; fill captions with `coverforge caption {split_dir.parent}`")
        row["path"] = str(safe_file(split_dir, row.get("file_name"), where))
        rows.append(row)
    return rows


def load_records(dataset: str | Path, split: str = "train") -> list[dict]:
    """The validated rows of DATASET/<split>/metadata.jsonl, each with an absolute `path`."""
    dataset = Path(dataset)
    if not dataset.is_dir():
        raise CoverforgeError(f"dataset folder {dataset} does not exist")
    return read_metadata(dataset / split)


def write_metadata(split_dir: str | Path, rows: list[dict]) -> Path:
    """Write rows (without `path`) as metadata.jsonl, atomically and byte-for-byte deterministic."""
    split_dir = Path(split_dir)
    split_dir.mkdir(parents=True, exist_ok=True)
    meta = split_dir / METADATA
    tmp = meta.with_name(METADATA + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            clean = {k: v for k, v in row.items() if k != "path"}
            f.write(json.dumps(clean, ensure_ascii=False) + "\n")
    os.replace(tmp, meta)
    return meta
