"""Covers the model letters itself: the prompt asks for title and author, the OCR judges.

Qwen-Image and Z-Image render legible text, so a cover need not be typeset: `lettering_prompt`
adds the book's title and author to its prompt, the art is cropped to the cover size as it is, and
the same read-back as for typeset covers (`covers.legibility`, full size and 160-px thumbnail)
measures whether the lettering reads. The text may be anywhere, so each role is matched against
the best run of regions the OCR found (`readback.read_back` without boxes); whatever else reads as
words is counted as stray text. `generate --covers --lettering both` sets the two side by side.
"""

from __future__ import annotations

from PIL import Image

from coverforge.covers.candidates import Candidate
from coverforge.covers.compose import CoverResult
from coverforge.covers.crop import fit_art
from coverforge.covers.legibility import THUMBNAIL_WIDTH, Legibility
from coverforge.covers.readback import normalise, read_back
from coverforge.covers.sizes import parse_size
from coverforge.covers.stray_text import read_art, stray_text

LAYOUT = "model-lettered"


def _author(book: dict) -> str:
    return ", ".join(book.get("authors") or [])


def lettering_prompt(prompt: str, book: dict) -> str:
    """The book's prompt, then the lettering the cover must carry, quoted as the model should spell it."""
    author = _author(book)
    by = f', and the author name "{author}" in smaller letters' if author else ""
    return f'{prompt} The cover is lettered: the title "{" ".join(book["title"].split())}" in large, clear letters{by}.'


def _read(image: Image.Image, book: dict) -> tuple[dict, list]:
    regions = read_art(image)
    roles = {"title": " ".join(book["title"].split())}
    if _author(book):
        roles["author"] = _author(book)
    return {role: read_back(text, regions) for role, text in roles.items()}, regions


def check_lettered(image: Image.Image, book: dict, thumbnail_width: int = THUMBNAIL_WIDTH) -> tuple[Legibility, list]:
    """Read-back of the title and author wherever the model put them, at full size and as a thumbnail;
    also the full-size regions (for the stray-text count)."""
    full, regions = _read(image, book)
    k = thumbnail_width / image.width
    thumb = image.resize((thumbnail_width, max(1, round(image.height * k))), Image.Resampling.LANCZOS)
    return Legibility(full, _read(thumb, book)[0], thumbnail_width), regions


def make_lettered_candidate(art: Image.Image, book: dict, size: str, seed: int, art_file: str) -> Candidate:
    """The model's own cover at the cover size, measured like a typeset one."""
    cover_size = parse_size(size)
    image, crop = fit_art(art, cover_size.size)
    legibility, regions = check_lettered(image, book)
    wanted = set(normalise(book["title"] + " " + _author(book)).split())
    extra = [r for r in regions if not set(normalise(r.text).split()) <= wanted]
    # No line was drawn by coverforge, so no contrast is measured (0: it never wins a tie on contrast).
    cover = CoverResult(image, cover_size, [], 0.0, crop, LAYOUT, art)
    return Candidate(seed, art_file, legibility, stray_text(extra, image.size), cover)
