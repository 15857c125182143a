"""Does the finished cover read as its title and author? OCR it at full size and as a store thumbnail.

The front (the trim area: what a store or a reader sees) is read once at its own size and once
scaled to THUMBNAIL_WIDTH px wide, as an online store lists it. Each role (title, subtitle,
author) is compared with what the OCR read inside the boxes it was drawn in (`readback`).

`readable_cover` is the feedback loop: when the measured scrim still leaves a role unread, the
cover is set again with a stronger least scrim (SCRIM_FLOORS), up to a flat panel behind the text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from PIL import Image

from coverforge.covers.fonts import missing_glyphs
from coverforge.covers.ocr import read_text
from coverforge.covers.readback import ReadBack, read_back
from coverforge.covers.sizes import Box
from coverforge.covers.typeset import TextLine

THUMBNAIL_WIDTH = 160
LOOK_THRESHOLD = 0.3  # detection threshold where the text is known to be (a lone "T" scores ~0.5)
FRONT_ROLES = ("title", "subtitle", "author")
SCRIM_FLOORS = (0.0, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Legibility:
    """Read-back of each front role at full size and as a thumbnail."""

    full: dict[str, ReadBack]
    thumbnail: dict[str, ReadBack]
    thumbnail_width: int = THUMBNAIL_WIDTH
    scrim_floor: float = 0.0
    """The least scrim strength the cover was set with (raised by `readable_cover`)."""
    attempts: list[dict] = field(default_factory=list)
    """Earlier settings tried by `readable_cover`, each {'scrim_floor', 'title_cer', ...}."""

    @property
    def title_reads(self) -> bool:
        """Every word of the title reads back letter for letter at full size."""
        return self.full["title"].reads

    @property
    def all_read(self) -> bool:
        return all(r.reads for r in self.full.values())

    def to_dict(self) -> dict:
        return {
            "title_reads": self.title_reads,
            "full": {role: r.to_dict() for role, r in self.full.items()},
            "thumbnail": {role: r.to_dict() for role, r in self.thumbnail.items()},
            "thumbnail_width": self.thumbnail_width,
            "scrim_floor": self.scrim_floor,
            "attempts": self.attempts,
        }

    def summary(self) -> list[str]:
        """Two lines for a terminal: full size and thumbnail."""
        def figures(reads: dict[str, ReadBack]) -> str:
            return "; ".join(f"{role} CER {r.cer:.3f}, word accuracy {r.word_accuracy:.0%}" for role, r in reads.items())

        return [f"read back at full size: {figures(self.full)}",
                f"read back at {self.thumbnail_width} px wide: {figures(self.thumbnail)}"]


def _front(result) -> tuple[Image.Image, list[TextLine]]:
    """The trimmed front of a cover or print wrap, and its front lines in that crop's pixels."""
    panels = getattr(result, "panels", None)
    trim: Box = panels["front"] if panels else result.size.trim
    x0, y0 = trim[0], trim[1]
    lines = [TextLine(l.role, l.text, l.origin, (l.box[0] - x0, l.box[1] - y0, l.box[2] - x0, l.box[3] - y0), l.font, l.colour, l.contrast)
             for l in result.boxes if l.role in FRONT_ROLES]
    return result.image.crop(trim), lines


def drawn_text(line: TextLine) -> str:
    """The line's text without characters its font has no glyph for: those print as boxes, which
    `covers.fonts` already warns about; the check asks whether what was drawn reads."""
    path = getattr(line.font, "path", None)
    missing = missing_glyphs(path, line.text) if path else set()
    return "".join(c for c in line.text if c not in missing)


def _read_roles(image: Image.Image, lines: list[TextLine], scale: float) -> dict[str, ReadBack]:
    regions = read_text(image, box_thresh=LOOK_THRESHOLD)
    out = {}
    for role in FRONT_ROLES:
        mine = [l for l in lines if l.role == role]
        if mine:
            where = [tuple(round(v * scale) for v in l.box) for l in mine]
            out[role] = read_back(" ".join(drawn_text(l) for l in mine), regions, where)
    return out


def _read_thumbnail(image: Image.Image, lines: list[TextLine], width: int) -> dict[str, ReadBack]:
    k = width / image.width
    thumb = image.convert("RGB").resize((width, max(1, round(image.height * k))), Image.Resampling.LANCZOS)
    return _read_roles(thumb, lines, k)


def check_legibility(image: Image.Image, lines: list[TextLine], thumbnail_width: int = THUMBNAIL_WIDTH) -> Legibility:
    """Read `image` (a front, in the pixels `lines` were drawn in) at full size and thumbnail size."""
    return Legibility(_read_roles(image, lines, 1.0), _read_thumbnail(image, lines, thumbnail_width), thumbnail_width)


def check_cover(result, thumbnail_width: int = THUMBNAIL_WIDTH) -> Legibility:
    """`check_legibility` of a CoverResult or WrapResult's trimmed front."""
    image, lines = _front(result)
    return check_legibility(image, lines, thumbnail_width)


Result = TypeVar("Result")


def readable_cover(build: Callable[[float], Result], thumbnail_width: int = THUMBNAIL_WIDTH) -> tuple[Result, Legibility]:
    """Build with `build(scrim_floor)` at each of SCRIM_FLOORS until every word of every front role
    reads back at full size; otherwise the attempt whose title read best (then the other roles)."""
    tried: list[tuple[tuple, Result, Legibility]] = []
    for floor in SCRIM_FLOORS:
        result = build(floor)
        image, lines = _front(result)
        full = _read_roles(image, lines, 1.0)
        key = (-full["title"].word_accuracy, full["title"].cer, sum(r.cer - r.word_accuracy for r in full.values()))
        tried.append((key, result, Legibility(full, {}, thumbnail_width, floor)))
        if all(r.reads for r in full.values()):
            break
    _, result, chosen = min(tried, key=lambda t: t[0])
    image, lines = _front(result)
    attempts = [{"scrim_floor": leg.scrim_floor, **{f"{role}_cer": r.cer for role, r in leg.full.items()}} for _, _, leg in tried]
    return result, Legibility(chosen.full, _read_thumbnail(image, lines, thumbnail_width), thumbnail_width, chosen.scrim_floor, attempts)
