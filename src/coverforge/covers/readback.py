"""Compare what the OCR read with the text that was meant: character error rate and word accuracy.

Both texts are normalised first: Unicode NFKC, case folded, punctuation and symbols (emoji, ©,
+) dropped, and whitespace
ignored for the character figures (display type is often tracked wide or tight, and OCR then
merges or splits words; "TheSalt" for "The Salt" has every letter right). Accents are kept: "e"
for "é" is a misreading.

- character error rate (CER) = Levenshtein distance / reference length, over the letters without
  spaces; 0 is a perfect read, 1 is nothing read (it can exceed 1 when much extra text is read).
- word accuracy = share of the reference words whose every letter aligned to the same letter in
  the read text with nothing inserted inside the word, in that one optimal character alignment.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass

from rapidfuzz.distance import Levenshtein

from coverforge.covers.ocr import TextRegion
from coverforge.covers.sizes import Box


def normalise(text: str) -> str:
    """NFKC, case folded, punctuation and symbols removed, runs of whitespace made single spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(c)[0] in "PS" or c.isspace() else c for c in folded)
    return " ".join(kept.split())


def character_error_rate(reference: str, read: str) -> float:
    """Levenshtein distance between the normalised texts without spaces, over the reference's length."""
    ref, hyp = normalise(reference).replace(" ", ""), normalise(read).replace(" ", "")
    if not ref:
        return 0.0 if not hyp else 1.0
    return Levenshtein.distance(ref, hyp) / len(ref)


def word_accuracy(reference: str, read: str) -> float:
    """Share of the reference's words read letter for letter (see the module docstring)."""
    words = normalise(reference).split()
    if not words:
        return 1.0
    ref, hyp = "".join(words), normalise(read).replace(" ", "")
    spans, start = [], 0
    for word in words:
        spans.append((start, start + len(word)))
        start += len(word)
    changed, inserted_before = set(), set()
    for op in Levenshtein.editops(ref, hyp):
        (inserted_before if op.tag == "insert" else changed).add(op.src_pos)
    # An insertion before a word's first letter or after its last does not damage it.
    good = sum(1 for a, b in spans if not changed.intersection(range(a, b)) and not inserted_before.intersection(range(a + 1, b)))
    return good / len(words)


@dataclass(frozen=True)
class ReadBack:
    """How one intended text (title, author, ...) read back."""

    expected: str
    read: str
    """The OCR's text that was compared (joined in reading order)."""
    cer: float
    word_accuracy: float

    @property
    def reads(self) -> bool:
        """Every word read letter for letter (stray extra characters, e.g. a glyph box read as a
        letter, show in the CER but do not stop a reader)."""
        return self.word_accuracy == 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def compare(expected: str, read: str) -> ReadBack:
    return ReadBack(expected, read, character_error_rate(expected, read), word_accuracy(expected, read))


def _inside(region: TextRegion, box: Box, slack: float) -> bool:
    """The region's middle lies within `box` grown by `slack` of its height on every side."""
    x0, y0, x1, y1 = box
    grow = slack * (y1 - y0)
    cx, cy = (region.box[0] + region.box[2]) / 2, (region.box[1] + region.box[3]) / 2
    return x0 - grow <= cx <= x1 + grow and y0 - grow <= cy <= y1 + grow


def read_back(expected: str, regions: list[TextRegion], where: list[Box] | None = None) -> ReadBack:
    """Compare `expected` with what was read.

    With `where` (the boxes the text was drawn in), the regions centred in them are joined in
    reading order. Without it (art that lettered itself, a cover from elsewhere) the text may be
    anywhere: the best-matching run of consecutive regions counts.
    """
    if where is not None:
        picked = [r for r in regions if any(_inside(r, box, 0.25) for box in where)]
        return compare(expected, " ".join(r.text for r in picked))
    best = compare(expected, "")
    span = len(normalise(expected).split()) + 1  # a title broken over its words, plus one stray line
    for i in range(len(regions)):
        for j in range(i + 1, min(len(regions), i + span) + 1):
            candidate = compare(expected, " ".join(r.text for r in regions[i:j]))
            if (candidate.cer, -candidate.word_accuracy) < (best.cer, -best.word_accuracy):
                best = candidate
    return best
