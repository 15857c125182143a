"""Read an HF imagefolder split (`metadata.jsonl` rows with file_name, text, genres, primary_genre)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from coverforge.errors import CoverforgeError


def read_metadata(folder: str | Path) -> list[dict]:
    """The metadata rows in file order; each must name an existing image file."""
    folder = Path(folder)
    meta = folder / "metadata.jsonl"
    if not meta.is_file():
        raise CoverforgeError(f"{meta} not found: an image folder needs a metadata.jsonl with file_name and text per image")
    rows = []
    for line_no, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise CoverforgeError(f"{meta}:{line_no}: not valid JSON ({e.msg})") from e
        if "file_name" not in row:
            raise CoverforgeError(f"{meta}:{line_no}: missing field file_name")
        if not (folder / row["file_name"]).is_file():
            raise CoverforgeError(f"{meta}:{line_no}: image {folder / row['file_name']} does not exist")
        row.setdefault("primary_genre", (row.get("genres") or ["unknown"])[0])
        rows.append(row)
    if not rows:
        raise CoverforgeError(f"{meta} lists no images")
    return rows


def open_rgb(path: Path) -> Image.Image:
    """Decode fully and close the file, so a stream of images holds no open handles."""
    with Image.open(path) as im:
        return im.convert("RGB")


def iter_images(folder: str | Path, rows: list[dict]) -> Iterator[tuple[Image.Image, dict]]:
    """(image, row) pairs decoded lazily, one at a time."""
    folder = Path(folder)
    for row in rows:
        yield open_rgb(folder / row["file_name"]), row
