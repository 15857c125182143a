"""Where each cover comes from: a catalogue row's file in a local folder, or an image folder with captions.

Local covers are found by the row's path column, by the file name in its URL, or by row index
(the Kaggle Goodreads download ships `images/images/<row>.jpg`). Folder captions come from an
existing `metadata.jsonl`, an `image_captions.json` map, or sidecar `.txt` files, in that order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from coverforge.data.catalogue import Book, RowSkip
from coverforge.data.images import IMAGE_EXTENSIONS
from coverforge.data.layout import METADATA
from coverforge.data.prompts import clean_text
from coverforge.errors import CoverforgeError

CAPTIONS_JSON = "image_captions.json"
_ROW_DIRS = ("images/images", "images", ".")


@dataclass(frozen=True)
class Entry:
    """One cover to process: its key (row or image index), file, output stem, prompt and book fields."""

    key: int
    source: Path
    stem: str
    text: str
    fields: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    """Further metadata columns (isbn, pages) copied into metadata.jsonl."""


def locate_covers(books: list[Book], images: Path | None, csv_dir: Path, skips: list[RowSkip]) -> dict[int, Path]:
    """source_row -> cover file for each book whose cover is found; the others are appended to skips."""
    if images is not None and not images.is_dir():
        raise CoverforgeError(f"images folder {images} does not exist")
    if images is None and not any(b.image for b in books):
        raise CoverforgeError("no covers: give --images DIR, --download, or map a path column with --columns image=COL")
    by_stem = _index_row_files(images) if images is not None else {}
    found = {}
    for b in books:
        path = _find(b, images, csv_dir, by_stem)
        if path is None:
            skips.append(RowSkip(b.source_row, "cover not found", b.image or b.image_url or b.title))
        else:
            found[b.source_row] = path
    return found


def _index_row_files(images: Path) -> dict[str, Path]:
    """Stem -> file for `<row>.<ext>` in the row-index folders; one listing instead of 50k stats."""
    index: dict[str, Path] = {}
    for sub in reversed(_ROW_DIRS):  # earlier folders win
        d = images / sub
        if d.is_dir():
            for p in sorted(d.iterdir(), reverse=True):
                if p.suffix.lower() in IMAGE_EXTENSIONS and p.stem.isdigit() and p.is_file():
                    index[str(int(p.stem))] = p
    return index


def _find(book: Book, images: Path | None, csv_dir: Path, by_stem: dict[str, Path]) -> Path | None:
    candidates = []
    if book.image:
        p = Path(book.image)
        candidates += [p] if p.is_absolute() else ([images / p] if images else []) + [csv_dir / p]
    if book.image_url and images is not None:
        name = Path(urlparse(book.image_url).path).name
        if name:
            candidates.append(images / name)
    for c in candidates:
        if c.is_file():
            return c
    return by_stem.get(str(book.source_row))


def folder_entries(folder: Path) -> tuple[list[Entry], list[RowSkip], int]:
    """Entries for every image under folder with whatever caption it has; also skips and images seen."""
    if not folder.is_dir():
        raise CoverforgeError(f"image folder {folder} does not exist")
    files = sorted(
        p for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not _hidden(p.relative_to(folder))
    )
    rel = {p.relative_to(folder).as_posix(): i for i, p in enumerate(files)}
    captions, fields, skips = _captions(folder, rel)
    entries = []
    for name, i in rel.items():
        f = fields.get(name, {})
        stem = f"{i:06d}-" + re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem)[:80]
        entries.append(Entry(i, files[i], stem, clean_text(captions.get(name, "")), f))
    return entries, skips, len(files) + len(skips)


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _captions(folder: Path, rel: dict[str, int]) -> tuple[dict[str, str], dict[str, dict], list[RowSkip]]:
    captions: dict[str, str] = {}
    fields: dict[str, dict] = {}
    skips: list[RowSkip] = []
    for name in rel:  # sidecars first: the richer sources below override them
        for ext in (".txt", ".caption"):
            side = (folder / name).with_suffix(ext)
            if side.is_file():
                captions[name] = side.read_text(encoding="utf-8", errors="replace")
                break
    json_path = folder / CAPTIONS_JSON
    if json_path.is_file():
        by_base = {Path(n).name: n for n in rel}
        for key, text in _read_captions_json(json_path).items():
            key = _norm(key, folder)
            captions[key if key in rel else by_base.get(Path(key).name, key)] = text
    meta = folder / METADATA
    if meta.is_file():
        for number, line in enumerate(meta.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                name = _norm(str(row["file_name"]), folder)
            except (json.JSONDecodeError, KeyError, TypeError):
                skips.append(RowSkip(-1, f"bad {METADATA} line {number}", line[:80]))
                continue
            if name not in rel:
                skips.append(RowSkip(-1, f"{METADATA} line {number}: image not found", name))
                continue
            captions[name] = str(row.get("text") or captions.get(name, ""))
            fields[name] = {k: row[k] for k in ("title", "authors", "publisher", "genres", "description") if k in row}
    return captions, fields, skips


def _read_captions_json(path: Path) -> dict[str, str]:
    """`{"file.jpg": "caption"}` or a list of `{"file_name"|"image": ..., "text"|"caption": ...}`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CoverforgeError(f"{path} is not valid JSON: {e}") from e
    if isinstance(data, dict):
        return {str(k): str(v) for k, v in data.items()}
    if isinstance(data, list):
        out = {}
        for item in data:
            if isinstance(item, dict):
                name = item.get("file_name") or item.get("image") or item.get("file")
                text = item.get("text") or item.get("caption")
                if name and text:
                    out[str(name)] = str(text)
        return out
    raise CoverforgeError(f"{path} must map image file names to captions")


def _norm(name: str, folder: Path) -> str:
    """Caption keys may use backslashes or a leading `./`; match them to paths relative to folder."""
    name = name.replace("\\", "/")
    return name[2:] if name.startswith("./") else name
