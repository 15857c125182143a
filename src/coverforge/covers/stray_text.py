"""Stray text in generated art: the pseudo-lettering diffusion models paint into covers.

The OCR detector finds text-like regions in the raw art (before any typesetting); on its own it
also fires on round, high-contrast shapes (a moon, a planet, a flower in the demo's own art), so
a region counts as stray text only when the recogniser reads at least MIN_CHARS letters or digits
in it. Garbled lettering still reads as letters (warped and blurred painted words read at
0.46-1.0 confidence here), while those shapes read as one glyph ("0", "O", "。").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from coverforge.covers.ocr import TextRegion, read_text

MIN_CHARS = 3
MIN_SCORE = 0.4  # recognition confidence; below rapidocr's 0.5 because pseudo-text reads less surely


@dataclass(frozen=True)
class StrayText:
    """What the OCR found in one piece of art."""

    regions: list[TextRegion] = field(default_factory=list)
    image_size: tuple[int, int] = (1, 1)

    @property
    def found(self) -> bool:
        return bool(self.regions)

    @property
    def area_fraction(self) -> float:
        """Share of the art covered by stray-text boxes (overlaps counted twice; they are rare)."""
        return min(1.0, sum(r.area for r in self.regions) / (self.image_size[0] * self.image_size[1]))

    def to_dict(self) -> dict:
        return {"found": self.found, "regions": len(self.regions), "area_fraction": round(self.area_fraction, 5),
                "texts": [r.text for r in self.regions]}


def _letters(text: str) -> int:
    return sum(c.isalnum() for c in text)


def stray_text(regions: list[TextRegion], image_size: tuple[int, int]) -> StrayText:
    """The regions of an OCR pass (read at MIN_SCORE) that count as stray text."""
    return StrayText([r for r in regions if r.score >= MIN_SCORE and _letters(r.text) >= MIN_CHARS], image_size)


def read_art(art: Image.Image) -> list[TextRegion]:
    """One OCR pass over raw art at the confidence stray text needs (its regions also serve to
    read a title the model lettered itself)."""
    return read_text(art, min_score=MIN_SCORE)


def find_stray_text(art: Image.Image) -> StrayText:
    """Text regions in `art` that read as at least MIN_CHARS letters or digits."""
    return stray_text(read_art(art), art.size)
