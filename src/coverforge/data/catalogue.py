"""Catalogue CSV import: the Goodreads best-books schema out of the box, other CSVs via a column map.

Real catalogues are messy: mixed UTF-8/Windows-1252 bytes, descriptions with embedded newlines and
stray quotes, ISBNs mangled into float notation by a spreadsheet, pages as "374 pages". A row that
cannot be used becomes a `RowSkip` with its reason; it never stops the import.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from coverforge.data.text_files import decode_mixed
from coverforge.errors import CoverforgeError

# Our field -> column in the Kaggle "goodreads-best-books" CSV (book_data.csv).
GOODREADS_COLUMNS = {
    "title": "book_title",
    "authors": "book_authors",
    "genres": "genres",
    "description": "book_desc",
    "image_url": "image_url",
    "isbn": "book_isbn",
    "pages": "book_pages",
}
FIELDS = ("title", "authors", "publisher", "genres", "description", "image", "image_url", "isbn", "pages")
# Authors may contain commas ("Tolkien, J.R.R."), so only unambiguous separators split them.
_AUTHOR_SEPARATORS = re.compile(r"\s*[|;]\s*")
_GENRE_SEPARATORS = re.compile(r"\s*[|;,]\s*")


@dataclass(frozen=True)
class Book:
    """One usable catalogue row; `source_row` is its 0-based data row (Kaggle's image file name)."""

    source_row: int
    title: str
    authors: list[str] = field(default_factory=list)
    publisher: str = ""
    genres: list[str] = field(default_factory=list)
    description: str = ""
    image: str = ""
    image_url: str = ""
    isbn: str = ""
    pages: int | None = None


@dataclass(frozen=True)
class RowSkip:
    """A row (or file) left out of the dataset and why, with what a publisher needs to find it:
    the book's title, its cover file or URL."""

    source_row: int
    reason: str
    ident: str = ""
    """The cover file or URL (or whatever names the item best)."""
    title: str = ""
    url: str = ""


def parse_columns(spec: str | None) -> dict[str, str]:
    """`title=Name,authors=Writer` -> {"title": "Name", "authors": "Writer"}; unknown fields are errors."""
    mapping: dict[str, str] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        key, sep, column = part.partition("=")
        key = key.strip()
        if not sep or not column.strip():
            raise CoverforgeError(f"--columns entry {part!r} must look like field=Column")
        if key not in FIELDS:
            raise CoverforgeError(f"--columns: unknown field {key!r}; fields are {', '.join(FIELDS)}")
        mapping[key] = column.strip()
    return mapping


def parse_isbn(value: str) -> str:
    """ISBN digits; float notation (`9.78043902348e+12`) is expanded, though its lost digits stay lost."""
    v = value.strip()
    if not v or v.lower() in ("nan", "none", "null"):
        return ""
    if re.fullmatch(r"[0-9.]+[eE][+]?[0-9]+", v):
        try:
            return str(int(Decimal(v)))
        except (InvalidOperation, ValueError):
            return ""
    if re.fullmatch(r"[0-9]+\.0+", v):
        v = v.split(".")[0]
    return re.sub(r"[^0-9Xx]", "", v).upper()


def parse_pages(value: str) -> int | None:
    match = re.search(r"\d[\d,]*", value or "")
    return int(match.group().replace(",", "")) if match else None


def split_list(value: str, separators: re.Pattern) -> list[str]:
    return [p for p in (s.strip() for s in separators.split(value or "")) if p]


def read_catalogue(csv_path: str | Path, columns: dict[str, str] | None = None) -> tuple[list[Book], list[RowSkip]]:
    """Read every row of the catalogue; returns the usable books and the skipped rows with reasons."""
    path = Path(csv_path)
    if not path.is_file():
        raise CoverforgeError(f"catalogue {path} does not exist or is not a file")
    text = decode_mixed(path.read_bytes(), f"catalogue {path}").replace("\x00", "")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error) as e:
        raise CoverforgeError(f"catalogue {path} has no readable header row") from e
    mapping = resolve_mapping(header, columns, path)
    index = {name: i for i, name in enumerate(header)}
    books: list[Book] = []
    skips: list[RowSkip] = []
    row_number = -1
    while True:
        line = reader.line_num
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            row_number += 1
            skips.append(RowSkip(row_number, f"unparseable CSV near line {line + 1}: {e}"))
            continue
        if not any(cell.strip() for cell in row):
            continue  # blank lines are not rows
        row_number += 1
        values = {f: (row[index[c]] if index[c] < len(row) else "") for f, c in mapping.items()}
        book, reason = _make_book(row_number, values)
        if book is None:
            skips.append(RowSkip(row_number, reason, values.get("image", "") or values.get("image_url", ""),
                                 values.get("title", "").strip(), values.get("image_url", "").strip()))
        else:
            books.append(book)
    return books, skips


def resolve_mapping(header: list[str], columns: dict[str, str] | None, path: Path) -> dict[str, str]:
    """Our field -> header column: Goodreads defaults (where present), then the user's map on top."""
    mapping = {f: c for f, c in GOODREADS_COLUMNS.items() if c in header}
    for f in FIELDS:  # a CSV whose header already uses our field names needs no map
        if f in header and f not in mapping:
            mapping[f] = f
    for f, c in (columns or {}).items():
        if c not in header:
            raise CoverforgeError(f"catalogue {path}: column {c!r} (for {f}) is not in the header {header}")
        mapping[f] = c
    if "title" not in mapping:
        raise CoverforgeError(
            f"catalogue {path}: no title column (header: {header}); map one with --columns title=YourColumn"
        )
    return mapping


def _make_book(row_number: int, values: dict[str, str]) -> tuple[Book | None, str]:
    title = values.get("title", "").strip()
    if not title:
        return None, "empty title"
    return Book(
        source_row=row_number,
        title=title,
        authors=split_list(values.get("authors", ""), _AUTHOR_SEPARATORS),
        publisher=values.get("publisher", "").strip(),
        genres=split_list(values.get("genres", ""), _GENRE_SEPARATORS),
        description=values.get("description", "").strip(),
        image=values.get("image", "").strip(),
        image_url=values.get("image_url", "").strip(),
        isbn=parse_isbn(values.get("isbn", "")),
        pages=parse_pages(values.get("pages", "")),
    ), ""
