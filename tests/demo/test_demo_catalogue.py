"""The synthetic catalogue: schema, balance, prompt lengths, colour, determinism, genre language."""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coverforge.data.colour import GRAYSCALE_THRESHOLD, colourfulness
from coverforge.demo.art import PAINTERS
from coverforge.demo.catalogue import COLUMNS, GENRES, make_catalogue, primary_genre_ids
from coverforge.demo.wordlists import GENRE_WORDS
from coverforge.errors import CoverforgeError
from coverforge.models.tokenizer import build_clip_tokenizer, has_real_vocab

GOODREADS_COLUMNS = [
    "book_authors", "book_desc", "book_edition", "book_format", "book_isbn", "book_pages", "book_rating",
    "book_rating_count", "book_review_count", "book_title", "genres", "image_url",
]


def _prompt(row: dict) -> str:
    """The standard template, as `coverforge prepare` builds it (no publisher in this schema)."""
    authors = ", ".join(row["book_authors"].split("|"))
    genres = ", ".join(row["genres"].split("|"))
    return f'Book cover. Title: "{row["book_title"]}". Author: {authors}. Genres: {genres}. {row["book_desc"]}'


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_schema_and_fields(catalogue):
    rows = catalogue["rows"]
    with catalogue["csv"].open(encoding="utf-8", newline="") as f:
        assert next(csv.reader(f)) == GOODREADS_COLUMNS == COLUMNS
    assert len(rows) == 360
    for i, row in enumerate(rows):
        genres = row["genres"].split("|")
        assert genres[0] in GENRES and 2 <= len(genres) <= 4 and len(set(genres)) == len(genres)
        assert set(genres[1:]) <= set(GENRE_WORDS[genres[0]]["secondary"])
        assert not set(genres[1:]) & set(GENRES), "a secondary genre must not be another primary one"
        assert 1 <= len(row["book_authors"].split("|")) <= 2
        assert re.fullmatch(r"\d+ pages", row["book_pages"])
        assert re.fullmatch(r"(9\.\d+E\+12|978\d{10}|)", row["book_isbn"]), row["book_isbn"]
        assert 3.0 <= float(row["book_rating"]) <= 5.0
        assert int(row["book_review_count"]) <= int(row["book_rating_count"])
        with Image.open(catalogue["dir"] / "images" / f"{i}.jpg") as im:
            assert im.format == "JPEG" and im.size == (256, 384)
    isbns = Counter("float" if "E+" in r["book_isbn"] else "plain" if r["book_isbn"] else "empty" for r in rows)
    assert isbns["float"] > 100 and isbns["plain"] > 30 and isbns["empty"] > 5
    assert len(list((catalogue["dir"] / "images").iterdir())) == 360


def test_genres_are_balanced_and_varied(catalogue):
    rows = catalogue["rows"]
    counts = Counter(primary_genre_ids([r["genres"] for r in rows]))
    assert sorted(counts) == list(range(len(GENRES))) and max(counts.values()) - min(counts.values()) <= 1
    titles = [r["book_title"] for r in rows]
    assert len(set(titles)) > 0.8 * len(titles)
    assert sum(":" in t for t in titles) > 30
    assert sum(len(t.split()) >= 6 for t in titles) > 20, "some titles should be long"
    assert any(not t.isascii() for t in titles) and sum(not r["book_authors"].isascii() for r in rows) > 30
    sentences = [len(re.findall(r"[.!?](?:\s|$)", r["book_desc"])) for r in rows]
    assert min(sentences) >= 4 and max(sentences) <= 10


def test_prompts_take_the_long_prompt_path(catalogue):
    if not has_real_vocab():
        pytest.skip("real CLIP BPE merges not installed; token counts would be meaningless")
    tokenizer = build_clip_tokenizer()
    lengths = np.array([len(tokenizer(_prompt(r), truncation=False, verbose=False)["input_ids"]) for r in catalogue["rows"]])
    assert ((lengths >= 150) & (lengths <= 400)).mean() >= 0.9, np.percentile(lengths, [0, 5, 50, 95, 100])


def test_every_cover_is_colourful(catalogue):
    values = [colourfulness(Image.open(p)) for p in (catalogue["dir"] / "images").glob("*.jpg")]
    assert min(values) > GRAYSCALE_THRESHOLD


def test_genre_language_survives_downscaling(catalogue):
    """Nearest class mean on 8x12 thumbnails already separates the genres."""
    rows = catalogue["rows"]
    labels = np.array(primary_genre_ids([r["genres"] for r in rows]))
    thumbs = np.stack([
        np.asarray(Image.open(catalogue["dir"] / "images" / f"{i}.jpg").resize((8, 12), Image.BOX), dtype=np.float32).ravel()
        for i in range(len(rows))
    ])
    train, test = slice(0, 240), slice(240, None)
    means = np.stack([thumbs[train][labels[train] == g].mean(0) for g in range(len(GENRES))])
    predicted = np.linalg.norm(thumbs[test][:, None] - means[None], axis=2).argmin(1)
    assert (predicted == labels[test]).mean() >= 0.9


def test_covers_vary_within_a_genre(catalogue):
    rows = catalogue["rows"]
    labels = np.array(primary_genre_ids([r["genres"] for r in rows]))
    for g in range(len(GENRES)):
        ids = np.flatnonzero(labels == g)[:12]
        small = np.stack([np.asarray(Image.open(catalogue["dir"] / "images" / f"{i}.jpg").resize((32, 48), Image.BOX), dtype=np.float32) for i in ids])
        assert small.std(0).mean() > 8.0, f"{GENRES[g]} covers are nearly identical"


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    make_catalogue(tmp_path / "a", n_books=18, seed=3, cover_size=(96, 144))
    make_catalogue(tmp_path / "b", n_books=18, seed=3, cover_size=(96, 144))
    make_catalogue(tmp_path / "c", n_books=18, seed=4, cover_size=(96, 144))
    a, b, c = (_digest(tmp_path / x) for x in "abc")
    assert a == b and len(a) == 20  # catalogue.csv, motifs.jsonl and 18 covers
    assert a["catalogue.csv"] != c["catalogue.csv"] and a["images/0.jpg"] != c["images/0.jpg"]
    with Image.open(tmp_path / "a" / "images" / "0.jpg") as im:
        assert im.size == (96, 144)


def test_every_genre_has_a_painter_and_words():
    assert list(PAINTERS) == GENRES and list(GENRE_WORDS) == GENRES


def test_fast_enough(catalogue):
    assert catalogue["seconds"] < 30.0


@pytest.mark.parametrize("kwargs", [{"n_books": 0}, {"cover_size": (8, 8)}])
def test_bad_arguments_are_user_errors(tmp_path, kwargs):
    with pytest.raises(CoverforgeError):
        make_catalogue(tmp_path, **kwargs)


def test_unknown_genre_is_a_user_error():
    from coverforge.demo.art import paint_cover

    with pytest.raises(CoverforgeError, match="Western"):
        paint_cover("Western", np.random.default_rng(0), (64, 96))
