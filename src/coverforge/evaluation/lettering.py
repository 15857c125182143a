"""Lettering figures for `coverforge evaluate`: does a typeset cover read as its title, does the raw
art carry stray pseudo-text, and how well does a model that letters covers itself spell the title.

Per image (with the book's `title` in its record): one OCR pass over the raw art gives the stray
text and the native-lettering read-back (the title anywhere in the art); the art is then typeset
with `make_cover` at `cover_size` (one attempt, no OCR feedback: the figure is the typesetting
as it stands) and read back at full size and as a 160-px thumbnail. Typesetting and native
lettering are thus compared on the same books and the same art.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from coverforge.covers.compose import make_cover
from coverforge.covers.legibility import check_cover
from coverforge.covers.readback import read_back
from coverforge.covers.stray_text import read_art, stray_text

METHOD = "rapidocr PP-OCRv6 (bundled ONNX), CER/word accuracy after normalising case, punctuation, whitespace"
# Figure name -> lower is better.
LETTERING_METRICS = {
    "title_cer": True, "title_word_accuracy": False,
    "title_cer_thumbnail": True, "title_word_accuracy_thumbnail": False,
    "native_title_cer": True, "native_title_word_accuracy": False,
    "stray_text_rate": True, "stray_text_area": True,
}
MAX_LISTED = 20  # unread titles listed in the report


@dataclass(frozen=True)
class LetteringCheck:
    """Callable per (image, record): the figures above for one image."""

    cover_size: str = "800x1280px"
    """Size the art is typeset at (the ebook's aspect at half size: OCR reads at 1280 px anyway)."""

    def __call__(self, image: Image.Image, record: dict) -> dict:
        regions = read_art(image)
        stray = stray_text(regions, image.size)
        row = {"stray_text_rate": float(stray.found), "stray_text_area": stray.area_fraction}
        title = str(record.get("title") or "").strip()
        if not title:
            return row
        native = read_back(title, regions)
        authors = record.get("authors") or []
        author = ", ".join(authors) if isinstance(authors, list) else str(authors)
        cover = make_cover(image, title, author, size=self.cover_size, genre=record.get("primary_genre"))
        reads = check_cover(cover)
        return {**row, "native_title_cer": native.cer, "native_title_word_accuracy": native.word_accuracy,
                "title_cer": reads.full["title"].cer, "title_word_accuracy": reads.full["title"].word_accuracy,
                "title_cer_thumbnail": reads.thumbnail["title"].cer, "title_word_accuracy_thumbnail": reads.thumbnail["title"].word_accuracy,
                "title": title, "title_read": reads.full["title"].read}


def summarise(rows: list[dict]) -> dict[str, tuple[float, int]]:
    """Mean of each figure over the rows that have it: name -> (value, n)."""
    out = {}
    for name in LETTERING_METRICS:
        values = [r[name] for r in rows if name in r]
        if values:
            out[name] = (sum(values) / len(values), len(values))
    return out


def unread_titles(rows: list[dict], records: list[dict]) -> list[dict]:
    """Books whose typeset title did not read back word for word at full size (the first MAX_LISTED)."""
    found = []
    for row, record in zip(rows, records):
        if row.get("title_word_accuracy", 1.0) < 1.0:
            found.append({"file": record.get("file_name") or f"seed {record.get('seed', '')}", "genre": record.get("primary_genre"),
                          "title": row["title"], "read": row["title_read"], "cer": round(row["title_cer"], 4)})
    return found[:MAX_LISTED]
