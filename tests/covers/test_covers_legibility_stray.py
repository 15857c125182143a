"""Stray text in raw art: painted letters are flagged, clean art (the demo's own included) is not."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from coverforge.covers.fonts import load_font
from coverforge.covers.ocr import ocr_engine
from coverforge.covers.stray_text import find_stray_text
from coverforge.demo.art import paint_cover
from test_covers_typography import make_art

SIZE = (512, 768)


@pytest.fixture(scope="session")
def engine():
    return ocr_engine()


def paint_words(art: Image.Image, words: list[str], size: int = 44, warp: float = 0.0, seed: int = 0) -> Image.Image:
    """`art` with words painted on it in a pale ink; `warp` > 0 bends and blurs them like the
    pseudo-lettering of a diffusion model."""
    rng = np.random.default_rng(seed)
    layer = Image.new("L", art.size, 0)
    draw = ImageDraw.Draw(layer)
    for i, word in enumerate(words):
        draw.text((20 + int(rng.integers(0, 120)), 70 + i * 220), word, font=load_font("serif", i % 2 == 1, size, word), fill=255)
    if warp:
        ink = np.asarray(layer)
        h, w = ink.shape
        yy, xx = np.mgrid[0:h, 0:w]
        sx = (xx + warp * np.sin(yy / 7.0) + warp * np.sin(xx / 11.0)).clip(0, w - 1).astype(int)
        sy = (yy + warp * np.cos(xx / 9.0)).clip(0, h - 1).astype(int)
        layer = Image.fromarray(ink[sy, sx]).filter(ImageFilter.GaussianBlur(warp / 4))
    return Image.composite(Image.new("RGB", art.size, (240, 222, 170)), art.convert("RGB"), layer)


CLEAN = {
    "light": lambda: make_art("light", SIZE, 1),
    "dark": lambda: make_art("dark", SIZE, 2),
    "busy": lambda: make_art("busy", SIZE, 3),
    # The demo's painters draw moons, planets and flowers: OCR detection alone takes them for text.
    **{genre: (lambda g=genre: paint_cover(g, np.random.default_rng(0), SIZE)) for genre in ("Fantasy", "Science Fiction", "Romance", "Horror", "History")},
}


@pytest.mark.parametrize("name", list(CLEAN))
def test_clean_art_has_no_stray_text(engine, name):
    found = find_stray_text(CLEAN[name]())
    assert not found.found and found.area_fraction == 0.0, found.to_dict()


@pytest.mark.parametrize("warp", [0.0, 6.0])
def test_painted_letters_are_flagged(engine, warp):
    art = paint_words(paint_cover("Fantasy", np.random.default_rng(0), SIZE), ["Vorthe Kasn", "LIBRAE OMN", "tsa quv rels"], warp=warp)
    found = find_stray_text(art)
    assert found.found and len(found.regions) == 3, found.to_dict()
    assert 0.02 < found.area_fraction < 0.5
    top = found.regions[0].box
    assert top[1] < 100 < top[3]  # the first painted line (drawn from y = 70, 44 px type), where it was painted


def test_a_single_small_word_is_flagged(engine):
    found = find_stray_text(paint_words(make_art("dark", SIZE, 2), ["Qlpo"], size=22))
    assert found.found and found.to_dict()["regions"] == 1
