from __future__ import annotations

import pytest

from coverforge.covers.sizes import parse_size, parse_trim, spine_width_in
from coverforge.errors import CoverforgeError


def test_ebook_is_1600_by_2560_without_bleed():
    size = parse_size("ebook")
    assert size.size == (1600, 2560) and size.bleed_px == 0
    assert size.trim == (0, 0, 1600, 2560)
    x0, y0, x1, y1 = size.safe
    assert 0 < x0 < x1 < 1600 and 0 < y0 < y1 < 2560


def test_print_front_adds_eighth_inch_bleed_at_300_dpi():
    size = parse_size("6x9in")
    assert size.dpi == 300 and size.size == (round(6.25 * 300), round(9.25 * 300))
    assert (size.width_in, size.height_in) == (6.25, 9.25)
    x0, y0, x1, y1 = size.trim
    assert (x1 - x0, y1 - y0) == (1800, 2700)
    assert x0 == y0 == round(0.125 * 300)
    sx0, sy0, sx1, sy1 = size.safe
    assert sx0 - x0 >= 0.125 * 300 and x1 - sx1 >= 0.125 * 300  # KDP's minimum text margin
    half = parse_size("5.5x8.5in")
    assert half.size == (round(5.75 * 300), round(8.75 * 300))


def test_pixel_sizes_and_case():
    assert parse_size("1000x1500px").size == (1000, 1500)
    assert parse_size(" 1000 X 1500 PX ").size == (1000, 1500)
    assert parse_size("EBOOK").size == (1600, 2560)


@pytest.mark.parametrize("spec", ["", "big", "6x9", "6x9cm", "0x9in", "6x900in", "10.5x20px", "5x5px", "-6x9in"])
def test_bad_sizes_raise_a_clear_coverforge_error(spec):
    with pytest.raises(CoverforgeError) as err:
        parse_size(spec)
    message = str(err.value)
    assert repr(spec) in message
    assert "in" in message or "px" in message


def test_spine_width_from_pages_and_paper():
    assert spine_width_in(300, "white") == pytest.approx(300 * 0.002252)
    assert spine_width_in(300, "cream") == pytest.approx(0.75)
    assert spine_width_in(100, "cream") > spine_width_in(100, "white")
    with pytest.raises(CoverforgeError, match="paper"):
        spine_width_in(100, "glossy")
    with pytest.raises(CoverforgeError, match="page count"):
        spine_width_in(0, "white")


def test_trim_must_be_inches():
    assert parse_trim("6x9in") == (6.0, 9.0)
    with pytest.raises(CoverforgeError, match="WxHin"):
        parse_trim("1600x2560px")
