"""Fit a piece of text into a box: the largest font size that fits, breaking lines only between words.

Order of resort: (1) the largest size from `max_size` down to `min_size` that fits in at most
`max_lines` lines; (2) the same with as many lines as it takes; (3) below `min_size`, which only
happens for a single word too long for the box, or a text too long for any sane size. Words are
never split. Lines are balanced (same number of lines, most even widths) so a title does not end
on one orphaned word.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

from PIL import ImageFont

from coverforge.covers.fonts import load_font
from coverforge.errors import CoverforgeError

SMALLEST_SIZE = 6
BALANCE_MAX_WORDS = 14  # exhaustive balancing is cheap up to here; longer texts keep the greedy breaks


@dataclass(frozen=True)
class FittedText:
    """Lines of text at one font size, with the ink extents needed to place them."""

    lines: tuple[str, ...]
    """The text broken into lines; joining them with spaces gives the input words back."""
    font: ImageFont.FreeTypeFont
    size: int
    """Font size in px."""
    pitch: int
    """Baseline-to-baseline distance in px."""
    ink: tuple[tuple[int, int, int, int], ...]
    """Per line, the ink box relative to the line's left baseline origin (x0, y0, x1, y1); y0 < 0."""

    @property
    def width(self) -> int:
        return max(x1 - x0 for x0, _, x1, _ in self.ink)

    @property
    def height(self) -> int:
        """From the top of the first line's ink to the bottom of the last line's ink."""
        return -self.ink[0][1] + (len(self.lines) - 1) * self.pitch + self.ink[-1][3]


def _ink(font: ImageFont.FreeTypeFont, text: str) -> tuple[int, int, int, int]:
    return tuple(int(v) for v in font.getbbox(text, anchor="ls"))  # type: ignore[return-value]


def _greedy(words: list[str], width_of, max_width: float) -> list[str] | None:
    lines: list[str] = []
    for word in words:
        if width_of(word) > max_width:
            return None
        if lines and width_of(lines[-1] + " " + word) <= max_width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _balanced(words: list[str], n_lines: int, width_of) -> list[str]:
    """Break `words` into `n_lines` lines with the narrowest widest line (then the most even)."""
    best, best_cost = None, None
    for cuts in itertools.combinations(range(1, len(words)), n_lines - 1):
        bounds = (0, *cuts, len(words))
        lines = [" ".join(words[a:b]) for a, b in zip(bounds, bounds[1:])]
        widths = [width_of(line) for line in lines]
        cost = (max(widths), sum((max(widths) - w) ** 2 for w in widths))
        if best_cost is None or cost < best_cost:
            best, best_cost = lines, cost
    return best or [" ".join(words)]


def layout_lines(words: list[str], font: ImageFont.FreeTypeFont, max_width: float, leading: float) -> FittedText | None:
    """Words broken into lines no wider than `max_width` at this font; None if a word is wider."""
    width_of = lru_cache(maxsize=None)(lambda s: (lambda b: b[2] - b[0])(_ink(font, s)))
    lines = _greedy(words, width_of, max_width)
    if lines is None:
        return None
    if 1 < len(lines) and len(words) <= BALANCE_MAX_WORDS:
        lines = _balanced(words, len(lines), width_of)
    size = int(font.size)
    return FittedText(tuple(lines), font, size, max(1, round(size * leading)), tuple(_ink(font, line) for line in lines))


def fit_text(
    text: str,
    family: str,
    bold: bool,
    box_width: int,
    box_height: int,
    max_size: int,
    min_size: int,
    max_lines: int = 3,
    leading: float = 1.1,
) -> FittedText:
    """The largest fitting set of lines for `text` in a box_width x box_height box (see module doc)."""
    words = text.split()
    if not words:
        raise CoverforgeError("cannot fit empty text")
    max_size = max(SMALLEST_SIZE, max_size)
    min_size = max(SMALLEST_SIZE, min(min_size, max_size))

    def attempt(size: int, line_limit: int | None) -> FittedText | None:
        fitted = layout_lines(words, load_font(family, bold, size, text), box_width, leading)
        if fitted is None or fitted.height > box_height:
            return None
        if line_limit is not None and len(fitted.lines) > line_limit:
            return None
        return fitted

    for lo, hi, line_limit in ((min_size, max_size, max_lines), (min_size, max_size, None), (SMALLEST_SIZE, min_size - 1, None)):
        found = _largest(lo, hi, lambda size: attempt(size, line_limit))
        if found is not None:
            return found
    raise CoverforgeError(f"text {text[:40]!r} does not fit a {box_width}x{box_height} px box even at {SMALLEST_SIZE} px")


def _largest(lo: int, hi: int, attempt) -> FittedText | None:
    """Binary search for the largest size in [lo, hi] whose attempt succeeds (fit is monotone in size)."""
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        fitted = attempt(mid)
        if fitted is not None:
            best, lo = fitted, mid + 1
        else:
            hi = mid - 1
    return best
