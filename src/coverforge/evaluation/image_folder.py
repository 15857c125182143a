"""Read an HF imagefolder split (`metadata.jsonl` rows with file_name, text, genres, primary_genre)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from coverforge.data.layout import read_metadata as read_split_metadata
from coverforge.errors import CoverforgeError


def read_metadata(folder: str | Path) -> list[dict]:
    """The metadata rows in file order (data.layout's validation: files exist and stay inside the
    folder); each gets a `primary_genre` for per-genre tables. Prompts may be absent here."""
    rows = read_split_metadata(folder, require_text=False)
    if not rows:
        raise CoverforgeError(f"{Path(folder) / 'metadata.jsonl'} lists no images")
    for row in rows:
        row.setdefault("primary_genre", (row.get("genres") or ["unknown"])[0])
    return rows


def open_rgb(path: Path) -> Image.Image:
    """Decode fully (with prepare's decompression-bomb guard) and close the file, so a stream of
    images holds no open handles; an unreadable image is one error naming it."""
    from coverforge.data.images import ImageRejected, open_image

    try:
        with open_image(path) as im:
            return im.convert("RGB")
    except ImageRejected as e:
        raise CoverforgeError(f"{path}: {e}; replace it or remove its line from metadata.jsonl") from None


def iter_images(folder: str | Path, rows: list[dict]) -> Iterator[tuple[Image.Image, dict]]:
    """(image, row) pairs decoded lazily, one at a time."""
    folder = Path(folder)
    for row in rows:
        yield open_rgb(folder / row["file_name"]), row
