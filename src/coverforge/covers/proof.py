"""Proof sheet: the cover with bleed, trim, safe-area and text-box guides, beside the art crop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image, ImageDraw

from coverforge.covers.fonts import load_font
from coverforge.covers.sizes import Box, CoverSize

if TYPE_CHECKING:
    from coverforge.covers.crop import Crop
    from coverforge.covers.typeset import TextLine

PROOF_HEIGHT = 1200
BLEED_TINT = (255, 0, 0, 90)
TRIM_COLOUR = (255, 40, 40)
SAFE_COLOUR = (40, 220, 90)
TEXT_COLOUR = (60, 140, 255)
PANEL_COLOUR = (255, 200, 0)


def _scaled(box: Box | tuple[float, ...], k: float) -> tuple[int, int, int, int]:
    return tuple(round(v * k) for v in box)  # type: ignore[return-value]


def _crop_panel(art: Image.Image, crop: Crop, height: int) -> Image.Image:
    """The source art with the discarded parts dimmed and the kept crop outlined."""
    k = height / art.height
    panel = art.convert("RGB").resize((max(1, round(art.width * k)), height), Image.Resampling.LANCZOS)
    shade = Image.new("RGBA", panel.size, (0, 0, 0, 150))
    kept = _scaled(crop.box, k)
    ImageDraw.Draw(shade).rectangle(kept, fill=(0, 0, 0, 0))
    panel = Image.alpha_composite(panel.convert("RGBA"), shade).convert("RGB")
    draw = ImageDraw.Draw(panel)
    draw.rectangle(kept, outline=(255, 255, 0), width=3)
    label = f"art {crop.source_size[0]}x{crop.source_size[1]}, kept {crop.kept_fraction:.0%}, x{crop.scale:.2f}"
    draw.text((8, 8), label, font=load_font("sans", True, 18, label), fill=(255, 255, 0), stroke_width=2, stroke_fill=(0, 0, 0))
    return panel


def draw_proof(image: Image.Image, size: CoverSize, lines: list[TextLine], crop: Crop, art: Image.Image, panels: list[Box] = (), extra_safe: list[Box] = ()) -> Image.Image:
    """Cover guides: bleed tinted red, trim line red, safe area green, text ink boxes blue,
    panel folds (spine) yellow; on the left the source art with the crop that was used."""
    k = PROOF_HEIGHT / image.height
    cover = image.convert("RGBA").resize((round(image.width * k), PROOF_HEIGHT), Image.Resampling.LANCZOS)
    overlay = Image.new("RGBA", cover.size, BLEED_TINT)
    trim = _scaled(size.trim, k)
    ImageDraw.Draw(overlay).rectangle((trim[0], trim[1], trim[2] - 1, trim[3] - 1), fill=(0, 0, 0, 0))
    cover = Image.alpha_composite(cover, overlay).convert("RGB") if size.bleed_px else cover.convert("RGB")
    draw = ImageDraw.Draw(cover)
    draw.rectangle((trim[0], trim[1], trim[2] - 1, trim[3] - 1), outline=TRIM_COLOUR, width=2)
    for safe in (size.safe, *extra_safe):
        s = _scaled(safe, k)
        draw.rectangle((s[0], s[1], s[2] - 1, s[3] - 1), outline=SAFE_COLOUR, width=2)
    for panel in panels:
        p = _scaled(panel, k)
        draw.rectangle((p[0], p[1], p[2] - 1, p[3] - 1), outline=PANEL_COLOUR, width=1)
    for line in lines:
        draw.rectangle(_scaled(line.box, k), outline=TEXT_COLOUR, width=1)
    legend = f"{size.name or 'cover'} {size.width_px}x{size.height_px}px  red: trim/bleed  green: safe  blue: text  min contrast {min((l.contrast for l in lines), default=0):.1f}:1"
    font = load_font("sans", False, 16, legend)
    draw.text((6, PROOF_HEIGHT - 24), legend, font=font, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    left = _crop_panel(art, crop, PROOF_HEIGHT)
    sheet = Image.new("RGB", (left.width + 16 + cover.width, PROOF_HEIGHT), (40, 40, 40))
    sheet.paste(left, (0, 0))
    sheet.paste(cover, (left.width + 16, 0))
    return sheet
