"""The issue's typography check: 30 title/author pairs on light, dark and busy art."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from coverforge.covers.compose import make_cover
from coverforge.covers.contrast import MIN_CONTRAST, contrast_ratio, relative_luminance
from coverforge.covers.layouts import LAYOUTS
from coverforge.covers.sizes import parse_size

PAIRS = [
    ("Cien años de soledad", "Gabriel García Márquez", ""),
    ("Ærø", "Søren Kierkegaard", "En fortælling"),
    ("Straße der Ölbäume", "Jürgen Groß", ""),
    ("It", "Stephen King", ""),
    ("Q", "Ann Lee", ""),
    ("Supercalifragilisticexpialidociousnessnessnessnessness", "Mary Poppins", ""),
    ("Pneumonoultramicroscopicsilicovolcanoconiosisandmore", "A. B. Doctor", "Notes"),
    ("The Curious Incident of the Dog in the Night-Time and Other Stories From a Very Long Title", "Mark Haddon", "A Novel"),
    ("A Song of Ice and Fire: The Winds of Winter, Being the Sixth Volume of a Long Saga", "George R. R. Martin", ""),
    ("Les Misérables", "Victor Hugo", "Tome premier — Fantine"),
    ("Crime and Punishment", "Fyodor Dostoevsky", "Translated by Constance Garnett"),
    ("Don Quijote de la Mancha", "Miguel de Cervantes Saavedra", ""),
    ("Łódź Nocą", "Wisława Szymborska", "Wiersze"),
    ("Čarovnija Življenja", "Ivan Cankar", ""),
    ("Þögnin", "Halldór Laxness", ""),
    ("The Name of the Wind", "Patrick Rothfuss", "The Kingkiller Chronicle: Day One"),
    ("Gone Girl", "Gillian Flynn", ""),
    ("Pride and Prejudice", "Jane Austen", ""),
    ("Dune", "Frank Herbert", ""),
    ("The Hitchhiker's Guide to the Galaxy", "Douglas Adams", ""),
    ("Zażółć gęślą jaźń", "Zofia Nałkowska", "Opowiadania"),
    ("Een Kleine Geschiedenis van Bijna Alles", "Bill Bryson", ""),
    ("Ångström's Last Summer", "Åsa Öberg-Lindqvist", "A Mystery"),
    ("Why We Sleep", "Matthew Walker", "Unlocking the Power of Sleep and Dreams"),
    ("I", "Isaac Asimov-Ozymandias-Featherstonehaugh-Cholmondeley", ""),
    ("Night", "Elie Wiesel", ""),
    ("Señor Vivo and the Coca Lord", "Louis de Bernières", ""),
    ("The Girl with the Dragon Tattoo", "Stieg Larsson", "Millennium, Book One"),
    ("Cat's Cradle", "Kurt Vonnegut", ""),
    ("Ça", "Françoise Sagan-Bonjour-Tristesse", "Roman"),
]
ART_KINDS = {"light": 1, "dark": 2, "busy": 3}
SIZE = "420x672px"  # ebook aspect at a quarter of the size, to keep 90 covers fast


def make_art(kind: str, size: tuple[int, int] = (500, 700), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    if kind == "light":
        pixels = 225 + rng.integers(0, 31, (h, w, 3))
    elif kind == "dark":
        pixels = rng.integers(0, 35, (h, w, 3))
    else:  # busy: half uniform noise, half diagonal black/white stripes
        noise = rng.integers(0, 256, (h, w, 3))
        stripes = ((np.arange(w)[None, :] + np.arange(h)[:, None]) // 9 % 2 * 255)[..., None]
        pixels = np.where(rng.random((h, w, 1)) < 0.5, noise, stripes)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def independent_contrast(image: Image.Image, line) -> float:
    """Contrast re-measured on the final image: glyph pixels (dilated) masked out, worst 5% kept."""
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).text(line.origin, line.text, font=line.font, fill=255, anchor="ls")
    mask = mask.filter(ImageFilter.MaxFilter(3))
    x0, y0, x1, y1 = line.box[0] - 3, line.box[1] - 3, line.box[2] + 3, line.box[3] + 3
    pixels = np.asarray(image, dtype=np.float64)[y0:y1, x0:x1]
    background = pixels[np.asarray(mask)[y0:y1, x0:x1] == 0]
    lum = relative_luminance(background)
    text_lum = float(relative_luminance(line.colour))
    worst = np.percentile(lum, 95 if text_lum > np.median(lum) else 5)
    return float(contrast_ratio(text_lum, worst))


@pytest.mark.parametrize("kind", list(ART_KINDS))
def test_thirty_pairs_fit_safe_area_keep_words_and_contrast(kind):
    art = make_art(kind, seed=ART_KINDS[kind])
    size = parse_size(SIZE)
    layouts = list(LAYOUTS)
    for i, (title, author, subtitle) in enumerate(PAIRS):
        result = make_cover(art, title, author, subtitle, size=SIZE, layout=layouts[i % len(layouts)])
        assert result.image.size == (size.width_px, size.height_px) and result.image.mode == "RGB"
        sx0, sy0, sx1, sy1 = size.safe
        for line in result.boxes:
            x0, y0, x1, y1 = line.box
            assert sx0 <= x0 and sy0 <= y0 and x1 <= sx1 and y1 <= sy1, (title, line.text, line.box, size.safe)
            assert line.contrast >= MIN_CONTRAST, (kind, title, line.text, line.contrast)
            assert independent_contrast(result.image, line) >= MIN_CONTRAST, (kind, title, line.text)
        for role, text in (("title", title), ("subtitle", subtitle), ("author", author)):
            drawn = " ".join(line.text for line in result.boxes if line.role == role)
            assert drawn.split() == text.split(), (role, drawn, text)
        assert result.contrast == min(line.contrast for line in result.boxes)


def test_lines_do_not_overlap_and_title_is_largest():
    result = make_cover(make_art("busy"), "The Name of the Wind", "Patrick Rothfuss", "The Kingkiller Chronicle", size=SIZE)
    boxes = [line.box for line in result.boxes]
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes[a], boxes[b]
            assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, (result.boxes[a].text, result.boxes[b].text)
    sizes = {line.role: line.font_size for line in result.boxes}
    assert sizes["title"] > sizes["subtitle"] and sizes["title"] > sizes["author"]


def test_text_is_actually_drawn_where_the_boxes_say():
    art = make_art("dark")
    result = make_cover(art, "Night", "Elie Wiesel", size=SIZE, layout="classic")
    plain = make_cover(art, "Night", "Elie Wiesel", size=SIZE, layout="classic")
    assert ImageChops.difference(result.image, plain.image).getbbox() is None  # deterministic
    pixels = np.asarray(result.image, dtype=np.int32)
    for line in result.boxes:
        x0, y0, x1, y1 = line.box
        patch = pixels[y0:y1, x0:x1]
        near_text = np.abs(patch - np.array(line.colour)).sum(axis=-1) < 30
        assert near_text.mean() > 0.05, line.text  # glyph pixels in the text colour are there


@pytest.mark.parametrize("spec", ["ebook", "6x9in"])
def test_full_sizes_are_exact(spec):
    size = parse_size(spec)
    result = make_cover(make_art("busy", (900, 900)), "Cien años de soledad", "Gabriel García Márquez", "Una novela", size=spec, genre="thriller")
    assert result.image.size == size.size
    assert result.layout == "band"
    assert result.contrast >= MIN_CONTRAST
