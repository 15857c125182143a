"""A synthetic book catalogue in the Goodreads best-books schema, with procedurally drawn covers.

The demo runs it through `coverforge prepare` like any user's data, so the CSV keeps the real
dataset's quirks: `|`-separated authors and genres, pages as "374 pages", ISBNs partly in the float
notation a spreadsheet left behind ("9.78044E+12"), empty image URLs (covers sit beside it by row).
That schema has no publisher column, so none is written.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from coverforge.demo.art import paint_cover
from coverforge.demo.wordlists import EDITIONS, FIRST_NAMES, FORMATS, GENRE_WORDS, LAST_NAMES, PRAISE, PRAISE_ADJ, SLOTS
from coverforge.errors import CoverforgeError

GENRES: list[str] = ["Fantasy", "Science Fiction", "Romance", "Thriller", "Horror", "History"]
"""Primary genres, in the order their class ids follow."""

COLUMNS = [
    "book_authors", "book_desc", "book_edition", "book_format", "book_isbn", "book_pages", "book_rating",
    "book_rating_count", "book_review_count", "book_title", "genres", "image_url",
]
JPEG_QUALITY = 90
MOTIFS_FILE = "motifs.jsonl"
"""Beside catalogue.csv (whose schema has no room for it): per row, the motifs drawn on its cover."""
MIN_BLURB_WORDS = 100

_TITLE_PATTERNS = [
    "The {adj} {noun}", "{noun} of {plural}", "The {noun} of {adj} {plural}", "{adj} {plural}",
    "{first}'s {noun}", "The {noun}", "A {noun} of {plural} and {plural2}",
    "The {adj} {noun} and the {adj2} {plural}", "When the {plural} Fall Silent",
]


def _pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))]


def _person(rng: np.random.Generator) -> str:
    return f"{_pick(rng, FIRST_NAMES)} {_pick(rng, LAST_NAMES)}"


def _title(rng: np.random.Generator, words: dict) -> str:
    fields = {
        "adj": _pick(rng, words["title_adj"]), "adj2": _pick(rng, words["title_adj"]),
        "noun": _pick(rng, words["title_noun"]), "plural": _pick(rng, words["title_plural"]),
        "plural2": _pick(rng, words["title_plural"]), "first": _pick(rng, FIRST_NAMES),
    }
    title = _pick(rng, _TITLE_PATTERNS).format(**fields)
    if rng.random() < 0.25:
        title += ": " + _pick(rng, words["subtitle"])
    return title


def _blurb(rng: np.random.Generator, words: dict) -> str:
    """4-9 sentences in the order the genre lists them (setup, conflict, hook), sometimes praise.

    Short draws grow to at least MIN_BLURB_WORDS words so that the prompt passes 150 CLIP tokens.
    """
    slots = {name: _pick(rng, options) for name, options in {**SLOTS, **words["slots"]}.items()}
    slots["hero"] = _pick(rng, FIRST_NAMES)
    slots["surname"] = _pick(rng, LAST_NAMES)
    slots["praise_adj"] = _pick(rng, PRAISE_ADJ)
    slots.update({f"{k}_cap": v[:1].upper() + v[1:] for k, v in list(slots.items())})
    pool = words["sentences"]
    with_praise = rng.random() < 0.4
    order = rng.permutation(len(pool))
    n = int(rng.integers(4, 10)) - int(with_praise)
    while n < len(order) and sum(len(pool[i].split()) for i in order[:n]) < MIN_BLURB_WORDS:
        n += 1
    sentences = [pool[i] for i in np.sort(order[:n])] + ([_pick(rng, PRAISE)] if with_praise else [])
    return " ".join(s.format(**slots) for s in sentences)


def _isbn(rng: np.random.Generator) -> str:
    digits = "978" + "".join(str(d) for d in rng.integers(0, 10, 10))
    roll = rng.random()
    if roll < 0.55:
        return f"{float(digits):.6G}"  # e.g. 9.78044E+12, as a spreadsheet rounds it
    return digits if roll < 0.9 else ""


def book_row(rng: np.random.Generator, genre: str) -> dict[str, str]:
    """One catalogue row of primary genre `genre`."""
    words = GENRE_WORDS[genre]
    n_secondary = int(rng.integers(1, 4))
    secondary = rng.choice(words["secondary"], size=n_secondary, replace=False).tolist()
    authors = [_person(rng) for _ in range(1 if rng.random() < 0.8 else 2)]
    rating_count = int(rng.lognormal(8.5, 1.5))
    return {
        "book_authors": "|".join(authors),
        "book_desc": _blurb(rng, words),
        "book_edition": _pick(rng, EDITIONS),
        "book_format": _pick(rng, FORMATS),
        "book_isbn": _isbn(rng),
        "book_pages": f"{int(rng.integers(180, 720))} pages",
        "book_rating": f"{rng.uniform(3.2, 4.6):.2f}",
        "book_rating_count": str(rating_count),
        "book_review_count": str(int(rating_count * rng.uniform(0.03, 0.12))),
        "book_title": _title(rng, words),
        "genres": "|".join([genre] + secondary),
        "image_url": "",
    }


def make_catalogue(out_dir: str | Path, n_books: int = 360, seed: int = 0, cover_size: tuple[int, int] = (256, 384)) -> Path:
    """Write `out_dir/catalogue.csv` and `out_dir/images/<row>.jpg`; return the CSV path.

    Genres are balanced (in shuffled order); the same seed gives byte-identical files.
    """
    if n_books < 1:
        raise CoverforgeError(f"make_catalogue: n_books must be at least 1, got {n_books}")
    if len(cover_size) != 2 or min(cover_size) < 16:
        raise CoverforgeError(f"make_catalogue: cover_size must be (width, height) of at least 16 px, got {cover_size}")
    out = Path(out_dir)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng([seed, 0]).permutation(np.arange(n_books) % len(GENRES))
    csv_path = out / "catalogue.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as f, (out / MOTIFS_FILE).open("w", encoding="utf-8") as m:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row, genre_id in enumerate(order.tolist()):
            genre = GENRES[genre_id]
            # Separate streams for text and art: retuning one leaves the other unchanged.
            writer.writerow(book_row(np.random.default_rng([seed, row, 1]), genre))
            motifs: list[dict] = []
            cover = paint_cover(genre, np.random.default_rng([seed, row, 2]), tuple(cover_size), motifs)
            cover.save(images / f"{row}.jpg", quality=JPEG_QUALITY)
            m.write(json.dumps({"row": row, "genre": genre, "motifs": motifs}) + "\n")
    return csv_path


def load_motifs(catalogue_dir: str | Path) -> dict[int, list[dict]]:
    """Catalogue row -> the motifs its cover was drawn with (art._record's geometry)."""
    path = Path(catalogue_dir) / MOTIFS_FILE
    if not path.is_file():
        raise CoverforgeError(f"{path} is missing: the catalogue was made before motifs were recorded; make it again")
    with path.open(encoding="utf-8") as f:
        return {int(r["row"]): r["motifs"] for r in map(json.loads, f)}


def primary_genre_ids(genres_column: list[str]) -> list[int]:
    """Class ids from a catalogue's `genres` strings (first listed genre is the primary one)."""
    return [GENRES.index(g.split("|")[0].strip()) for g in genres_column]
