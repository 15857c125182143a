"""Several pieces of art for one book: typeset each, score it, keep the best.

Order of preference: legibility first (a cover whose title does not read is no cover), then the
least stray text in the raw art, then the highest measured text contrast. Legibility is the mean
word accuracy of the front's roles at full size and of the title as a store thumbnail: every
word counts the same, so a candidate loses for a misread author as well as for a misread title.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from coverforge.covers.compose import CoverResult, make_cover
from coverforge.covers.legibility import Legibility, readable_cover
from coverforge.covers.stray_text import StrayText, find_stray_text


def legibility_score(legibility: Legibility) -> float:
    """Mean word accuracy over the front roles at full size and the title at thumbnail size."""
    figures = [r.word_accuracy for r in legibility.full.values()]
    if "title" in legibility.thumbnail:
        figures.append(legibility.thumbnail["title"].word_accuracy)
    return sum(figures) / len(figures)


@dataclass(frozen=True)
class Candidate:
    """One typeset candidate and what was measured on it."""

    seed: int
    art_file: str
    """The raw art's file name (beside the covers folder)."""
    legibility: Legibility
    stray: StrayText
    cover: CoverResult = field(repr=False, compare=False)

    @property
    def scores(self) -> dict:
        return {"legibility": round(legibility_score(self.legibility), 4), "stray_text_area": round(self.stray.area_fraction, 5),
                "contrast": round(self.cover.contrast, 2)}

    def rank(self) -> tuple[float, float, float]:
        """Smaller is better: (-legibility, stray-text area, -contrast)."""
        s = self.scores
        return (-s["legibility"], s["stray_text_area"], -s["contrast"])

    def to_dict(self) -> dict:
        return {"seed": self.seed, "art": self.art_file, "scores": self.scores, "layout": self.cover.layout,
                "legibility": self.legibility.to_dict(), "stray_text": self.stray.to_dict()}


def make_candidate(art: Image.Image, book: dict, size: str, seed: int, art_file: str) -> Candidate:
    """Typeset `book` ({'title', 'authors', 'genres'}) on `art` until it reads (or the strongest
    scrim), and measure it."""
    genres = book.get("genres") or []
    author = ", ".join(book.get("authors") or [])
    cover, legibility = readable_cover(lambda floor: make_cover(
        art, book["title"], author, size=size, genre=genres[0] if genres else None, scrim_floor=floor))
    return Candidate(seed, art_file, legibility, find_stray_text(art), cover)


def choose(candidates: list[Candidate]) -> int:
    """Index of the best candidate (the first of equals: the lowest seed)."""
    return min(range(len(candidates)), key=lambda k: candidates[k].rank())
