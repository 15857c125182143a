"""Where each cover comes from: a catalogue row's file in a local folder, or an image folder with captions.

Local covers are found by the row's path column, by the file name in its URL, or by row index
(the Kaggle Goodreads download ships `images/images/<row>.jpg`). Folder captions come from an
existing `metadata.jsonl`, an `image_captions.json` map, or sidecar `.txt` files, in that order.

Only files inside the folders the user named are read: a path column with `../` or an absolute
path, or a symlink, that leads elsewhere is refused (a report line) unless `allow_outside` is set.
A folder import never reads `prepare`'s own output, and every file it does not import (not an
image, a format Pillow cannot read, a caption without its image) is a report line.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from coverforge.data.catalogue import Book, RowSkip
from coverforge.data.images import IMAGE_EXTENSIONS, unsupported_kind
from coverforge.data.layout import METADATA, SPLITS
from coverforge.data.prompts import clean_text
from coverforge.data.text_files import read_text
from coverforge.errors import CoverforgeError

log = logging.getLogger(__name__)

CAPTIONS_JSON = "image_captions.json"
CAPTION_EXTENSIONS = (".txt", ".caption")
_ROW_DIRS = ("images/images", "images", ".")
OUTSIDE_HINT = "pass --allow-outside-paths to read it"


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
    url: str = ""
    """Where the cover was downloaded from, for the report."""


def inside(path: Path, folders: list[Path]) -> bool:
    """Whether path, with every symlink and `..` resolved, lies in one of folders."""
    real = path.resolve()
    return any(real == f or f in real.parents for f in (d.resolve() for d in folders))


def locate_covers(books: list[Book], images: Path | None, csv_dir: Path, skips: list[RowSkip],
                  allow_outside: bool = False) -> dict[int, Path]:
    """source_row -> cover file for each book whose cover is found; the others are appended to skips."""
    if images is not None and not images.is_dir():
        raise CoverforgeError(f"images folder {images} does not exist")
    if images is None and not any(b.image for b in books):
        raise CoverforgeError("no covers: give --images DIR, --download, or map a path column with --columns image=COL")
    by_stem = _index_row_files(images) if images is not None else {}
    given = [images, csv_dir] if images is not None else [csv_dir]
    found = {}
    for b in books:
        path = _find(b, images, csv_dir, by_stem)
        if path is None:
            skips.append(RowSkip(b.source_row, "cover not found", b.image or b.image_url, b.title, b.image_url))
        elif not allow_outside and not inside(path, given):
            where = " or ".join(str(d) for d in given)
            skips.append(RowSkip(b.source_row, f"cover path leads outside {where} (to {path.resolve()}); {OUTSIDE_HINT}",
                                 b.image or str(path), b.title, b.image_url))
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


def folder_entries(folder: Path, out: Path | None = None, allow_outside: bool = False) -> tuple[list[Entry], list[RowSkip], int]:
    """Entries for every image under folder with whatever caption it has; also the skipped files
    (each with its reason) and the number of files seen. `out`, and any earlier output of
    `prepare` inside folder, is never read."""
    if not folder.is_dir():
        raise CoverforgeError(f"image folder {folder} does not exist")
    files, others = _walk(folder, out, allow_outside)
    rel = {p.relative_to(folder).as_posix(): i for i, p in enumerate(files)}
    skips = _not_imported(folder, others, set(rel), allow_outside)
    captions, fields, meta_skips = _captions(folder, rel)
    entries = []
    for name, i in rel.items():
        if name in captions and captions[name] is None:
            continue  # its only caption file is unreadable: reported, and the image waits for a fixed caption
        f = fields.get(name, {})
        stem = f"{i:06d}-" + re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem)[:80]
        entries.append(Entry(i, files[i], stem, clean_text(captions.get(name, "")), f))
    return entries, skips + meta_skips, len(files) + len(skips) + len(meta_skips)


def _walk(folder: Path, out: Path | None, allow_outside: bool) -> tuple[list[Path], list[Path]]:
    """(image files, other files) under folder, hidden ones and prepare's outputs left out."""
    skip_dirs = {out.resolve()} if out is not None else set()
    images, others = [], []
    for root, dirs, names in os.walk(folder, followlinks=allow_outside):
        here = Path(root)
        kept = []
        for d in sorted(dirs):
            sub = here / d
            if sub.resolve() in skip_dirs:
                continue
            if d.startswith("."):
                if _holds_images(sub):
                    others.append(sub)  # reported below: a hidden folder of covers is not imported silently
                continue
            if is_prepared_dataset(sub):
                log.info("not reading %s: it is the output of an earlier `coverforge prepare`", sub)
                continue
            if sub.is_symlink() and not allow_outside:
                others.append(sub)  # reported below: links to folders are not followed
                continue
            kept.append(d)
        dirs[:] = kept
        for name in sorted(names):
            path = here / name
            if name.startswith("."):
                if path.suffix.lower() in IMAGE_EXTENSIONS and not name.startswith("._"):
                    others.append(path)  # reported below; "._x.png" are macOS resource forks, not images
                continue
            leaves = not allow_outside and path.is_symlink() and not inside(path, [folder])
            (images if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file() and not leaves else others).append(path)
    images.sort()
    return images, sorted(others)


def _holds_images(folder: Path) -> bool:
    """Any image file anywhere under folder (hidden folders of covers get a report line)."""
    for _, _, names in os.walk(folder):
        if any(Path(n).suffix.lower() in IMAGE_EXTENSIONS and not n.startswith("._") for n in names):
            return True
    return False


def is_prepared_dataset(folder: Path) -> bool:
    """A folder `prepare` wrote: its report beside a split with metadata.jsonl."""
    return (folder / "report.json").is_file() and any((folder / s / METADATA).is_file() for s in SPLITS)


def _not_imported(folder: Path, others: list[Path], images: set[str], allow_outside: bool) -> list[RowSkip]:
    """A report line for every file under folder that is neither an image nor a caption source."""
    stems = {str(Path(name).with_suffix("")) for name in images}
    skips = []
    for path in others:
        name = path.relative_to(folder).as_posix()
        if path.name.startswith("."):
            what = "folder" if path.is_dir() else "file"
            reason = f"hidden {what} (its name starts with a dot): not imported; rename it without the dot to import it"
        elif not allow_outside and not inside(path, [folder]):
            reason = f"link leads outside {folder} (to {path.resolve()}); {OUTSIDE_HINT}"
        elif path.is_dir():
            reason = "link to a folder inside the input, not followed (its images are read where they are)"
        elif not path.is_file():
            reason = "not a regular file (a pipe, socket or device): not read"
        elif name in (METADATA, CAPTIONS_JSON) or path.name.endswith(".jsonl.tmp"):
            continue
        elif path.suffix.lower() in CAPTION_EXTENSIONS:
            if str(Path(name).with_suffix("")) in stems:
                continue
            reason = "caption file without an image of the same name"
        elif unsupported_kind(path):
            kind = unsupported_kind(path)
            reason = f"{kind} file: this Pillow cannot read {kind}; convert it to JPEG or PNG"
        else:
            reason = f"not an image file ({path.suffix or 'no extension'})"
        skips.append(RowSkip(-1, reason, name))
    return skips


def _captions(folder: Path, rel: dict[str, int]) -> tuple[dict[str, str | None], dict[str, dict], list[RowSkip]]:
    """Caption (None: its caption file could not be read), book fields and report lines, by image name."""
    captions: dict[str, str | None] = {}
    fields: dict[str, dict] = {}
    skips: list[RowSkip] = []
    unreadable: dict[str, str] = {}
    for name in rel:  # sidecars first: the richer sources below override them
        for ext in CAPTION_EXTENSIONS:
            side = (folder / name).with_suffix(ext)
            if side.is_file():
                try:
                    captions[name] = read_text(side, "caption file")
                except CoverforgeError as e:
                    captions[name], unreadable[name] = None, str(e)
                break
    json_path = folder / CAPTIONS_JSON
    if json_path.is_file():
        by_base = {Path(n).name: n for n in rel}
        for key, text in _read_captions_json(json_path).items():
            key = _norm(key, folder)
            captions[key if key in rel else by_base.get(Path(key).name, key)] = text
    meta = folder / METADATA
    if meta.is_file():
        for number, line in enumerate(read_text(meta).splitlines(), start=1):
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
            text = row.get("text") or captions.get(name, "")
            captions[name] = None if text is None else str(text)
            fields[name] = {k: row[k] for k in ("title", "authors", "publisher", "genres", "description") if k in row}
    skips += [RowSkip(-1, reason, name) for name, reason in unreadable.items() if captions.get(name) is None]
    return captions, fields, skips


def _read_captions_json(path: Path) -> dict[str, str]:
    """`{"file.jpg": "caption"}` or a list of `{"file_name"|"image": ..., "text"|"caption": ...}`."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise CoverforgeError(f"{path} is not valid JSON: {e}") from None
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
