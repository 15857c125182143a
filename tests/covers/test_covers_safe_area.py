"""Safe area, measured on the drawn glyphs: every line's ink keeps at least 5% of the trim width
from every trim edge, and on print at least 0.25 in, in every layout and size."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from coverforge.covers.compose import make_cover
from coverforge.covers.layouts import LAYOUTS
from coverforge.covers.print_wrap import make_print_wrap
from coverforge.covers.sizes import Box, pixel_size, print_front_size
from test_covers_typography import make_art

# Long enough to fill the safe width, so a line that escaped the margin would show.
TITLE = "The Curious Incident of the Dog in the Night-Time and Other Stories"
SUBTITLE = "A Novel in Three Parts, With Notes"
AUTHOR = "Åsa Öberg-Lindqvist and Bartholomew Featherstonehaugh"
# Print fronts at 100 dpi keep the test fast: the 0.25 in rule scales with dpi like the pixels do
# (6x9in at 300 dpi is covered by test_covers_typography.test_full_sizes_are_exact and below).
SIZES = {
    "ebook-quarter": pixel_size(400, 640, "400x640px"),
    "square-web": pixel_size(600, 600, "600x600px"),
    "wide-web": pixel_size(900, 600, "900x600px"),
    "6x9in@100dpi": print_front_size(6, 9, dpi=100, name="6x9in"),
    "5x8in@100dpi": print_front_size(5, 8, dpi=100, name="5x8in"),
    "8.5x11in@100dpi": print_front_size(8.5, 11, dpi=100, name="8.5x11in"),
}


def ink_box(size: tuple[int, int], line) -> Box:
    """Bounds of the pixels the line's glyphs cover when drawn alone, as the cover draws them."""
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).text(line.origin, line.text, font=line.font, fill=255, anchor="ls")
    box = mask.getbbox()
    assert box is not None, line.text
    return box


def margins(ink: Box, trim: Box) -> tuple[int, int, int, int]:
    """Distance of the ink from the trim's left, top, right and bottom edges."""
    return (ink[0] - trim[0], ink[1] - trim[1], trim[2] - ink[2], trim[3] - ink[3])


def required_margin(trim: Box, dpi: float, printed: bool) -> float:
    rule = 0.05 * (trim[2] - trim[0])
    return max(rule, 0.25 * dpi) if printed else rule


@pytest.mark.parametrize("size_name", list(SIZES))
def test_every_layout_keeps_its_ink_inside_the_margin(size_name):
    size = SIZES[size_name]
    art = make_art("busy", (500, 700))
    need = required_margin(size.trim, size.dpi, size.bleed_px > 0)
    for layout in LAYOUTS:
        result = make_cover(art, TITLE, AUTHOR, SUBTITLE, size=size, layout=layout)
        assert {line.role for line in result.boxes} == {"title", "subtitle", "author"}
        for line in result.boxes:
            gaps = margins(ink_box(result.image.size, line), size.trim)
            assert min(gaps) >= need, (size_name, layout, line.role, line.text, gaps, need)


def test_the_title_block_has_headroom_on_an_ebook():
    """The issue's complaint, measured: the title's ink starts at least 5% of the width below the top."""
    result = make_cover(make_art("dark", (400, 640)), "The Salt Road", "Mara Ellison", size="ebook", layout="classic")
    top = min(ink_box(result.image.size, line)[1] for line in result.boxes if line.role == "title")
    assert top >= 0.05 * 1600


def test_print_wrap_front_back_and_spine_stay_a_quarter_inch_inside_the_trim():
    art = make_art("light", (500, 700))
    blurb = " ".join(["A long blurb sentence that wraps over several lines of the back cover."] * 12)
    wrap = make_print_wrap(art, TITLE, AUTHOR, SUBTITLE, "5x8in", pages=300, back_text=blurb)
    quarter = 0.25 * wrap.size.dpi
    roles = {line.role for line in wrap.boxes}
    assert {"title", "author", "back", "spine"} <= roles
    for line in wrap.boxes:
        ink = ink_box(wrap.image.size, line) if line.role != "spine" else line.box  # spine lines are drawn rotated
        assert min(margins(ink, wrap.size.trim)) >= quarter, (line.role, line.text)
        if line.role in ("title", "subtitle", "author", "back"):
            panel = wrap.panels["front" if line.role != "back" else "back"]
            assert min(margins(ink, panel)) >= max(quarter, 0.05 * (panel[2] - panel[0])), (line.role, line.text)
            assert not (line.role == "back" and ink[3] > wrap.panels["barcode"][1]), "blurb runs into the barcode area"


def test_ink_measure_sees_a_line_that_breaks_the_margin():
    """The measure itself: a line moved to the edge is caught."""
    result = make_cover(make_art("dark", (400, 640)), "Dune", "Frank Herbert", size="400x640px")
    line = result.boxes[0]
    moved = type(line)(line.role, line.text, (2, line.origin[1]), line.box, line.font)
    assert min(margins(ink_box(result.image.size, moved), result.size.trim)) < required_margin(result.size.trim, result.size.dpi, False)
