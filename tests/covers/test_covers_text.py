"""Fonts, contrast arithmetic and text fitting."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from coverforge.covers.contrast import contrast_ratio, line_contrast, relative_luminance
from coverforge.covers.fonts import font_candidates, font_path_for, load_font, missing_glyphs
from coverforge.covers.text_fit import fit_text

UNICODE_TITLES = ["Cien años de soledad", "Ærø", "Straße", "Łódź", "Þögnin", "Çà et là", "Zażółć gęślą jaźń"]


@pytest.mark.parametrize("family", ["serif", "sans"])
@pytest.mark.parametrize("bold", [False, True])
def test_bundled_faces_exist_and_cover_latin_accents(family, bold):
    candidates = font_candidates(family, bold)
    assert candidates and candidates[0].parent.name == "fonts" and "Source" in candidates[0].name
    for title in UNICODE_TITLES:
        assert missing_glyphs(font_path_for(family, bold, title), title) == set(), title


def test_tofu_detection_and_fallback():
    bundled = font_candidates("sans", False)[0]
    assert missing_glyphs(bundled, "abc 漢") == {"漢"}
    # Every glyph of a Latin title drawn with the chosen font differs from the .notdef box.
    font = load_font("serif", True, 40, "Straße")
    tofu = _ink(font, "\uffff")
    assert all(_ink(font, c) != tofu for c in "Straße")


def _ink(font, char):
    image = Image.new("L", (80, 80))
    ImageDraw.Draw(image).text((20, 20), char, font=font, fill=255)
    return image.tobytes()


def test_wcag_reference_values():
    assert float(relative_luminance((255, 255, 255))) == pytest.approx(1.0)
    assert float(relative_luminance((0, 0, 0))) == pytest.approx(0.0)
    assert contrast_ratio(1.0, 0.0) == pytest.approx(21.0)
    # WCAG's own example: #777777 on white is just under 4.5:1 (4.48).
    grey = float(relative_luminance((0x77, 0x77, 0x77)))
    assert contrast_ratio(grey, 1.0) == pytest.approx(4.48, abs=0.01)


def test_line_contrast_counts_the_worst_pixels_not_the_mean():
    background = np.zeros((20, 100, 3))
    background[:, :10] = 255  # a bright stripe across 10% of the line
    white_text = line_contrast(background, (0, 0, 100, 20), (255, 255, 255))
    assert white_text == pytest.approx(1.0)  # the stripe is the worst 5%: white on white
    assert line_contrast(background[:, 10:], (0, 0, 90, 20), (255, 255, 255)) == pytest.approx(21.0)


def test_fit_never_splits_words_and_prefers_big_type():
    text = "The Hitchhiker's Guide to the Galaxy"
    fitted = fit_text(text, "serif", True, 600, 400, 200, 30, 3)
    assert " ".join(fitted.lines).split() == text.split()
    assert len(fitted.lines) <= 3 and fitted.width <= 600 and fitted.height <= 400
    bigger = fit_text(text, "serif", True, 1200, 800, 400, 30, 3)
    assert bigger.size > fitted.size


def test_single_long_word_is_scaled_below_the_floor_not_broken():
    word = "Pneumonoultramicroscopicsilicovolcanoconiosis"
    fitted = fit_text(word, "sans", True, 300, 200, 120, 40, 3)
    assert fitted.lines == (word,)
    assert fitted.size < 40 and fitted.width <= 300


def test_more_lines_before_going_below_the_floor():
    text = " ".join(["word"] * 40)
    fitted = fit_text(text, "sans", False, 400, 1000, 60, 30, 3)
    assert fitted.size >= 30 and len(fitted.lines) > 3
    assert " ".join(fitted.lines).split() == text.split()
