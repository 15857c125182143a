"""Full print wrap: back, spine and front on one canvas with bleed, sized from page count and paper.

Geometry follows the print-on-demand cover templates (KDP, IngramSpark): width = bleed + back
trim + spine + front trim + bleed, height = bleed + trim height + bleed, with the spine from
`spine_width_in`. Pixels are the physical size rounded at 300 dpi; the PDF page is the exact
physical size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from coverforge.covers.compose import Crop, choose_layout, fit_art, save_cover, typeset
from coverforge.covers.proof import draw_proof
from coverforge.covers.sizes import BLEED_IN, PRINT_DPI, Box, CoverSize, inset, parse_trim, safe_margin_px, spine_width_in
from coverforge.covers.fonts import get_font, load_font
from coverforge.covers.text_fit import FittedText, fit_text, layout_lines
from coverforge.covers.typeset import TextLine, draw_lines, make_legible, stack
from coverforge.errors import CoverforgeError

SPINE_TEXT_MIN_PAGES = 80  # KDP allows spine text only on books with more than 79 pages
SPINE_MARGIN_IN = 0.0625  # KDP: keep spine text 0.0625 in from each fold
BARCODE_IN = (2.0, 1.2)  # KDP prints its barcode in a 2 x 1.2 in box at the back's lower right
BLURB_SIZE_PT = (12.0, 9.0)  # largest and smallest blurb type, in points


@dataclass
class WrapResult:
    image: Image.Image
    size: CoverSize
    """Whole canvas; `safe` is the front's safe area."""
    spine_width_in: float
    panels: dict[str, Box]
    """Trim boxes of 'back', 'spine', 'front' and the reserved 'barcode' area, in canvas pixels."""
    safe_boxes: dict[str, Box]
    boxes: list[TextLine]
    contrast: float
    crop: Crop
    art: Image.Image = field(repr=False)
    layout: str = ""
    font: str = ""
    """The bundled font chosen for title and author (front and spine); empty: the layout's faces."""

    @property
    def width_in(self) -> float:
        return self.size.width_in

    @property
    def height_in(self) -> float:
        return self.size.height_in

    def save_pdf(self, path: str | Path) -> Path:
        """PDF whose page is exactly width_in x height_in."""
        if Path(path).suffix.lower() != ".pdf":
            raise CoverforgeError(f"print wrap output {path}: must be a .pdf file")
        return save_cover(self.image, self.size, path)

    def proof(self) -> Image.Image:
        return draw_proof(self.image, self.size, self.boxes, self.crop, self.art, list(self.panels.values()), list(self.safe_boxes.values()))


def wrap_geometry(trim: str, pages: int, paper: str, dpi: float = PRINT_DPI) -> tuple[CoverSize, dict[str, Box], float]:
    """Canvas size, panel trim boxes and spine width (in) for a trim, page count and paper."""
    tw, th = parse_trim(trim)
    spine = spine_width_in(pages, paper)
    w_in, h_in = 2 * tw + spine + 2 * BLEED_IN, th + 2 * BLEED_IN
    px = lambda inches: round(inches * dpi)  # noqa: E731
    top, bottom = px(BLEED_IN), px(BLEED_IN + th)
    xs = [px(BLEED_IN), px(BLEED_IN + tw), px(BLEED_IN + tw + spine), px(BLEED_IN + 2 * tw + spine)]
    panels = {"back": (xs[0], top, xs[1], bottom), "spine": (xs[1], top, xs[2], bottom), "front": (xs[2], top, xs[3], bottom)}
    margin = safe_margin_px(xs[1] - xs[0], dpi)
    front_safe = inset(panels["front"], margin)
    size = CoverSize(px(w_in), px(h_in), dpi, px(BLEED_IN), (xs[0], top, xs[3], bottom), front_safe, f"{trim} wrap, {pages} pages {paper}", (w_in, h_in))
    bx1, by1 = panels["back"][2] - margin, panels["back"][3] - margin
    panels["barcode"] = (bx1 - px(BARCODE_IN[0]), by1 - px(BARCODE_IN[1]), bx1, by1)
    return size, panels, spine


def _fit_paragraphs(paragraphs: list[str], width: int, height: int, max_px: int, min_px: int, gap: float) -> list[FittedText]:
    """All paragraphs at the largest common size in [min_px, max_px] that fits; below it if must."""
    def attempt(size: int) -> list[FittedText] | None:
        fitted = [layout_lines(p.split(), load_font("serif", False, size, p), width, 1.35) for p in paragraphs]
        if any(f is None for f in fitted):
            return None
        total = sum(f.height for f in fitted) + round(gap * size) * (len(fitted) - 1)
        return fitted if total <= height else None

    for size in [*range(max_px, min_px - 1, -2), *range(min_px - 1, 5, -1)]:
        found = attempt(size)
        if found is not None:
            return found
    raise CoverforgeError(f"back text of {sum(len(p) for p in paragraphs)} characters does not fit on the back cover: shorten it")


def _back_panel(art: Image.Image, size: tuple[int, int], spine_rgb: np.ndarray) -> np.ndarray:
    """The front art, blurred and sunk toward the spine colour, so the blurb reads over it."""
    # Blurred anyway: work at a quarter of the size, then scale up smoothly.
    small, _ = fit_art(art, (max(1, size[0] // 4), max(1, size[1] // 4)))
    soft = small.filter(ImageFilter.GaussianBlur(size[0] / 160)).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(soft, dtype=np.float32) * 0.55 + spine_rgb * 0.45


def _spine_lines(canvas: Image.Image, spine: Box, title: str, author: str, dpi: float, face: tuple[str, bool] | None = None) -> list[TextLine]:
    """Title and author along the spine, reading top to bottom (the US/UK convention); in sans
    (bold title), or both in `face` (family, bold) when a font was chosen."""
    margin = round(SPINE_MARGIN_IN * dpi)
    length, thickness = spine[3] - spine[1] - 2 * round(0.375 * dpi), spine[2] - spine[0] - 2 * margin
    strip = canvas.crop((spine[0] + margin, spine[1] + round(0.375 * dpi), spine[2] - margin, spine[3] - round(0.375 * dpi))).rotate(90, expand=True)
    cap = max(6, round(thickness * 0.75))
    title_face, author_face = (face, face) if face else (("sans", True), ("sans", False))
    parts = [("spine", fit_text(title, *title_face, round(length * 0.6), thickness, cap, 6, 1))]
    if author:
        parts.append(("spine", fit_text(author, *author_face, round(length * 0.35), thickness, round(cap * 0.8), 6, 1)))
    lines = stack(parts[:1], (0, 0, round(length * 0.62), thickness), "middle", [0], align="left")
    if author:
        lines += stack(parts[1:], (round(length * 0.65), 0, length, thickness), "middle", [0], align="left")
        lines[-1] = _shift(lines[-1], length - lines[-1].box[2])  # author flush with the spine's foot
    background = np.asarray(strip, dtype=np.float32)
    background, lines = make_legible(background, lines, "band", max(2, margin // 2))
    strip = Image.fromarray(np.clip(background.round(), 0, 255).astype(np.uint8))
    draw_lines(strip, lines)
    canvas.paste(strip.rotate(-90, expand=True), (spine[0] + margin, spine[1] + round(0.375 * dpi)))
    # Map strip boxes (u along the spine, v across it) to canvas boxes after the -90 degree turn.
    ox, oy = spine[0] + margin, spine[1] + round(0.375 * dpi)
    return [TextLine(l.role, l.text, l.origin, (ox + thickness - l.box[3], oy + l.box[0], ox + thickness - l.box[1], oy + l.box[2]), l.font, l.colour, l.contrast) for l in lines]


def _shift(line: TextLine, dx: int) -> TextLine:
    x0, y0, x1, y1 = line.box
    return TextLine(line.role, line.text, (line.origin[0] + dx, line.origin[1]), (x0 + dx, y0, x1 + dx, y1), line.font, line.colour, line.contrast)


def make_print_wrap(
    front_art: Image.Image,
    title: str,
    author: str,
    subtitle: str = "",
    trim: str = "6x9in",
    *,
    pages: int,
    paper: str = "white",
    back_text: str = "",
    layout: str | None = None,
    genre: str | None = None,
    scrim_floor: float = 0.0,
    font: str | None = None,
) -> WrapResult:
    """Back (blurred art, optional blurb), spine (title/author if the book is thick enough) and
    front (typeset like `make_cover`) on one canvas at the exact physical size; `font` (a bundled
    font's name) sets title and author on front and spine."""
    if not title or not title.strip():
        raise CoverforgeError("cover title is empty: give the book's title")
    size, panels, spine_in = wrap_geometry(trim, pages, paper)
    chosen = choose_layout(layout, genre, font)
    face = (get_font(font).family, get_font(font).bold) if font else None
    texts = {"title": " ".join(title.split()), "subtitle": " ".join(subtitle.split()), "author": " ".join(author.split())}
    canvas = Image.new("RGB", size.size)
    # Front: everything right of the spine fold, bleed included.
    fx, top = panels["front"][0], panels["front"][1]
    local_trim = (0, top, panels["front"][2] - fx, panels["front"][3])
    local_safe = (size.safe[0] - fx, size.safe[1], size.safe[2] - fx, size.safe[3])
    front_size = CoverSize(size.width_px - fx, size.height_px, size.dpi, size.bleed_px, local_trim, local_safe, "front")
    front_art_fitted, crop = fit_art(front_art, front_size.size)
    front, front_lines = typeset(front_art_fitted, front_size, chosen, texts, scrim_floor)
    canvas.paste(front, (fx, 0))
    lines = [_shift(l, fx) for l in front_lines]
    # Spine and back share a dark tint of the art so the wrap reads as one object.
    spine_rgb = np.asarray(front_art_fitted, dtype=np.float32).reshape(-1, 3).mean(axis=0) * 0.3
    canvas.paste(Image.new("RGB", (panels["spine"][2] - panels["spine"][0], size.height_px), tuple(int(v) for v in spine_rgb)), (panels["spine"][0], 0))
    back_box = (0, 0, panels["back"][2], size.height_px)
    back = _back_panel(front_art, (back_box[2], back_box[3]), spine_rgb)
    margin = safe_margin_px(panels["back"][2] - panels["back"][0], size.dpi)
    back_safe = inset(panels["back"], margin)
    paragraphs = [" ".join(p.split()) for p in back_text.split("\n\n") if p.strip()]
    if paragraphs:
        region = (back_safe[0], back_safe[1], back_safe[2], panels["barcode"][1] - margin)
        pt = size.dpi / 72
        fitted = _fit_paragraphs(paragraphs, region[2] - region[0], region[3] - region[1], round(BLURB_SIZE_PT[0] * pt), round(BLURB_SIZE_PT[1] * pt), 0.8)
        gaps = [round(0.8 * f.size) for f in fitted]
        blurb = stack([("back", f) for f in fitted], region, "top", gaps, align="left")
        back, blurb = make_legible(back, blurb, "soft", margin // 3)
        lines += blurb
    back_image = Image.fromarray(np.clip(back.round(), 0, 255).astype(np.uint8))
    draw_lines(back_image, [l for l in lines if l.role == "back"])
    canvas.paste(back_image, (0, 0))
    safe_boxes = {"back": back_safe}
    if pages >= SPINE_TEXT_MIN_PAGES and panels["spine"][2] - panels["spine"][0] > 2 * round(SPINE_MARGIN_IN * size.dpi) + 12:
        lines += _spine_lines(canvas, panels["spine"], texts["title"], texts["author"], size.dpi, face)
        safe_boxes["spine"] = inset(panels["spine"], round(SPINE_MARGIN_IN * size.dpi), round(0.375 * size.dpi))
    # Each line's contrast was measured on its panel's composited background before text went on.
    return WrapResult(canvas, size, spine_in, panels, safe_boxes, lines, min(l.contrast for l in lines), crop, front_art,
                      chosen.name, get_font(font).name if font else "")
