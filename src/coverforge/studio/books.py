"""Books to make covers for: rows of a prepared dataset, rows of a catalogue CSV, or a book typed
into the page. Each comes with the prompt the model was trained on (the dataset's own text, or
the prompt template over the book's fields)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from coverforge.errors import CoverforgeError

MAX_FIELD_CHARS = {"title": 300, "author": 300, "genres": 300, "blurb": 6000}


def _book(title: str, authors: list[str], genres: list[str], description: str, prompt: str, index: int | None = None) -> dict:
    return {"index": index, "title": title, "authors": authors, "author": ", ".join(authors), "genres": genres,
            "description": description, "prompt": prompt}


@lru_cache(maxsize=8)
def _read_source(path: str, mtime: float) -> tuple[dict, ...]:
    from coverforge.data.prompts import build_prompt

    source = Path(path)
    if source.is_dir():
        from coverforge.data.layout import read_metadata

        rows = read_metadata(source, require_text=False)
        return tuple(
            _book(r.get("title") or Path(r["file_name"]).stem, list(r.get("authors") or []), list(r.get("genres") or []),
                  r.get("description") or "", r.get("text") or build_prompt(r), i)
            for i, r in enumerate(rows)
        )
    from coverforge.data.catalogue import read_catalogue

    found, _ = read_catalogue(source)
    return tuple(
        _book(b.title, list(b.authors), list(b.genres), b.description,
              build_prompt({"title": b.title, "authors": b.authors, "publisher": b.publisher, "genres": b.genres, "description": b.description}), i)
        for i, b in enumerate(found)
    )


def read_books(source: Path) -> list[dict]:
    """Every book of a dataset split folder (metadata.jsonl) or a catalogue CSV."""
    if not (source.is_dir() and (source / "metadata.jsonl").is_file()) and source.suffix.lower() != ".csv":
        raise CoverforgeError(f"book source {source.name}: give a dataset split folder (with metadata.jsonl) or a catalogue .csv")
    return list(_read_source(str(source), source.stat().st_mtime))


def pick_books(source: Path, indices: list[int]) -> list[dict]:
    books = read_books(source)
    for i in indices:
        if not 0 <= i < len(books):
            raise CoverforgeError(f"book {i} is not in {source.name} ({len(books)} books)")
    return [books[i] for i in indices]


def typed_book(title: str, author: str = "", genres: str = "", blurb: str = "") -> dict:
    """A book from the page's fields; genres comma-separated."""
    from coverforge.data.prompts import build_prompt

    values = {"title": title, "author": author, "genres": genres, "blurb": blurb}
    for name, value in values.items():
        if len(value) > MAX_FIELD_CHARS[name]:
            raise CoverforgeError(f"{name} is {len(value)} characters long: keep it under {MAX_FIELD_CHARS[name]}")
    if not title.strip():
        raise CoverforgeError("title is empty: type the book's title or pick a book")
    authors = [" ".join(author.split())] if author.strip() else []  # as typed: "Tolkien, J. R. R." is one author
    genre_list = [g.strip() for g in genres.split(",") if g.strip()]
    prompt = build_prompt({"title": title, "authors": authors, "genres": genre_list, "description": blurb})
    return _book(" ".join(title.split()), authors, genre_list, blurb.strip(), prompt)
