"""Cover sizes: ebook fronts, print fronts with bleed, and the spine width of a print wrap.

All boxes are pixel rectangles (left, top, right, bottom) on the output canvas, right/bottom
exclusive, the same convention as Pillow's crop boxes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from coverforge.errors import CoverforgeError

Box = tuple[int, int, int, int]

PRINT_DPI = 300
BLEED_IN = 0.125  # KDP and IngramSpark both ask for 0.125 in (3.2 mm) of bleed on every trimmed edge
# Text stays this far inside the trim: KDP asks for >= 0.125 in, IngramSpark for 0.25 in; the
# larger of 0.25 in and 5% of the trim width also looks right on an ebook at thumbnail size.
SAFE_MARGIN_IN = 0.25
SAFE_MARGIN_FRACTION = 0.05
EBOOK_SIZE = (1600, 2560)  # KDP's recommended ebook cover, 1:1.6
# Inches of spine per page (one page = one side of a leaf), as KDP's cover calculator states:
# white paper 0.002252 in/page, cream paper 0.0025 in/page.
PAPER_INCHES_PER_PAGE = {"white": 0.002252, "cream": 0.0025}
MAX_INCHES = 60.0
MAX_PIXELS = 20000

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[x×]\s*(\d+(?:\.\d+)?)\s*(in|px)\s*$", re.IGNORECASE)
_FORMS = "'ebook', WxHin for a print front (e.g. '6x9in', '5.5x8.5in') or WxHpx (e.g. '1600x2560px')"


@dataclass(frozen=True)
class CoverSize:
    """A canvas and the boxes that matter on it."""

    width_px: int
    """Full canvas width, bleed included."""
    height_px: int
    """Full canvas height, bleed included."""
    dpi: float
    """Pixels per inch at print; a nominal 300 for ebook and pixel sizes."""
    bleed_px: int
    """Bleed on each trimmed edge; 0 for ebook and pixel sizes."""
    trim: Box
    """Where the printed piece is cut; the whole canvas when there is no bleed."""
    safe: Box
    """Where text may go: the trim inset by the safe margin."""
    name: str = ""
    """The spec it was parsed from, for messages and proofs."""
    physical_in: tuple[float, float] | None = None
    """Exact printed (width, height) in inches, bleed included; the pixels are this rounded at `dpi`."""

    def __post_init__(self) -> None:
        if self.width_px <= 0 or self.height_px <= 0:
            raise CoverforgeError(f"cover size {self.name!r}: width and height must be positive")
        for label, (x0, y0, x1, y1) in (("trim", self.trim), ("safe", self.safe)):
            if not (0 <= x0 < x1 <= self.width_px and 0 <= y0 < y1 <= self.height_px):
                raise CoverforgeError(f"cover size {self.name!r}: {label} box {(x0, y0, x1, y1)} is not inside the canvas")

    @property
    def size(self) -> tuple[int, int]:
        return (self.width_px, self.height_px)

    @property
    def width_in(self) -> float:
        return self.physical_in[0] if self.physical_in else self.width_px / self.dpi

    @property
    def height_in(self) -> float:
        return self.physical_in[1] if self.physical_in else self.height_px / self.dpi

    @property
    def pdf_dpi(self) -> tuple[float, float]:
        """Resolution that makes a PDF page exactly the physical size (pixels were rounded)."""
        return (self.width_px / self.width_in, self.height_px / self.height_in)


def inset(box: Box, left: int, top: int | None = None, right: int | None = None, bottom: int | None = None) -> Box:
    """`box` shrunk by the given margins (top/right/bottom default to `left`)."""
    top = left if top is None else top
    right = left if right is None else right
    bottom = top if bottom is None else bottom
    return (box[0] + left, box[1] + top, box[2] - right, box[3] - bottom)


def safe_margin_px(trim_width_px: int, dpi: float) -> int:
    """Whole pixels, rounded up: a margin is a minimum (round() gave 42 px for 42.5)."""
    return math.ceil(max(SAFE_MARGIN_IN * dpi, SAFE_MARGIN_FRACTION * trim_width_px) - 1e-9)


def pixel_size(width_px: int, height_px: int, name: str = "") -> CoverSize:
    """A borderless cover of exactly this many pixels (ebook, web)."""
    trim = (0, 0, width_px, height_px)
    return CoverSize(width_px, height_px, PRINT_DPI, 0, trim, inset(trim, safe_margin_px(width_px, PRINT_DPI)), name)


def print_front_size(trim_w_in: float, trim_h_in: float, dpi: float = PRINT_DPI, name: str = "") -> CoverSize:
    """A print front at a trim size with BLEED_IN of bleed on all four edges."""
    w_in, h_in = trim_w_in + 2 * BLEED_IN, trim_h_in + 2 * BLEED_IN
    bleed = round(BLEED_IN * dpi)
    trim = (bleed, bleed, round((BLEED_IN + trim_w_in) * dpi), round((BLEED_IN + trim_h_in) * dpi))
    safe = inset(trim, safe_margin_px(trim[2] - trim[0], dpi))
    return CoverSize(round(w_in * dpi), round(h_in * dpi), dpi, bleed, trim, safe, name, (w_in, h_in))


def parse_size(spec: str) -> CoverSize:
    """'ebook' (1600x2560 px), 'WxHin' (print front with bleed at 300 dpi) or 'WxHpx'."""
    if not isinstance(spec, str) or not spec.strip():
        raise CoverforgeError(f"cover size {spec!r}: give {_FORMS}")
    if spec.strip().lower() == "ebook":
        return pixel_size(*EBOOK_SIZE, name="ebook")
    match = _SIZE_RE.match(spec)
    if match is None:
        raise CoverforgeError(f"cover size {spec!r} is not understood: give {_FORMS}")
    w, h, unit = float(match[1]), float(match[2]), match[3].lower()
    if unit == "in":
        if not (1.0 <= w <= MAX_INCHES and 1.0 <= h <= MAX_INCHES):
            raise CoverforgeError(f"cover size {spec!r}: trim width and height must be between 1 and {MAX_INCHES:g} inches")
        return print_front_size(w, h, name=spec.strip())
    if w != int(w) or h != int(h) or not (16 <= w <= MAX_PIXELS and 16 <= h <= MAX_PIXELS):
        raise CoverforgeError(f"cover size {spec!r}: pixel sizes must be whole numbers between 16 and {MAX_PIXELS}")
    return pixel_size(int(w), int(h), name=spec.strip())


def parse_trim(spec: str) -> tuple[float, float]:
    """A print trim 'WxHin' -> (width_in, height_in)."""
    match = _SIZE_RE.match(spec) if isinstance(spec, str) else None
    if match is None or match[3].lower() != "in":
        raise CoverforgeError(f"print trim {spec!r} is not understood: give WxHin, e.g. '6x9in' or '5.5x8.5in'")
    w, h = float(match[1]), float(match[2])
    if not (1.0 <= w <= MAX_INCHES and 1.0 <= h <= MAX_INCHES):
        raise CoverforgeError(f"print trim {spec!r}: width and height must be between 1 and {MAX_INCHES:g} inches")
    return w, h


def spine_width_in(pages: int, paper: str = "white") -> float:
    """Spine width in inches for a page count (pages, not leaves) on 'white' or 'cream' paper."""
    if paper not in PAPER_INCHES_PER_PAGE:
        raise CoverforgeError(f"paper {paper!r} is not known: use one of {sorted(PAPER_INCHES_PER_PAGE)}")
    if isinstance(pages, bool) or not isinstance(pages, int) or pages < 1:
        raise CoverforgeError(f"page count {pages!r} must be a positive whole number")
    return pages * PAPER_INCHES_PER_PAGE[paper]
