"""Shared builders for the data-preparation tests: textured synthetic covers and catalogues."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image


def cover_array(width: int, height: int, seed: int, gray: bool = False) -> np.ndarray:
    """A colourful, textured cover-like image (smooth gradients + blocks + noise), deterministic per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    base = rng.uniform(0, 255, size=3)
    freq = rng.uniform(2, 8, size=3)
    img = np.stack(
        [base[c] * 0.5 + 100 * np.sin(x / width * freq[c] + y / height * freq[(c + 1) % 3] + c) for c in range(3)], axis=-1
    )
    for _ in range(6):
        x0, y0 = rng.integers(0, width - 8), rng.integers(0, height - 8)
        img[y0 : y0 + height // 5, x0 : x0 + width // 4] = rng.uniform(0, 255, size=3)
    img += rng.normal(0, 6, size=img.shape)
    if gray:
        img = img.mean(axis=-1, keepdims=True).repeat(3, axis=-1)
    return np.clip(img, 0, 255).astype(np.uint8)


def save_cover(path: Path, width: int = 300, height: int = 450, seed: int = 0, gray: bool = False, **save_kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(cover_array(width, height, seed, gray)).save(path, **save_kw)
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


GOODREADS_HEADER = [
    "book_authors", "book_desc", "book_edition", "book_format", "book_isbn", "book_pages",
    "book_rating", "book_rating_count", "book_review_count", "book_title", "genres", "image_url",
]


def goodreads_row(title: str, authors: str = "Ann Author", genres: str = "Fantasy|Fiction", desc: str = "A story.",
                  url: str = "", isbn: str = "9.78043902348e+12", pages: str = "374 pages") -> list[str]:
    return [authors, desc, "", "Paperback", isbn, pages, "4.1", "100", "10", title, genres, url]
