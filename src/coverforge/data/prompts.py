"""Training prompts from a book's fields: one deterministic template, short important fields first.

The text encoder of SD 1.x/SDXL reads 77 tokens per chunk; putting title, author, publisher and
genres before the (long) description means even a single chunk sees what matters most.
"""

from __future__ import annotations

import html
import re
import string
import unicodedata

from coverforge.errors import CoverforgeError

DEFAULT_TEMPLATE = (
    'Book cover. Title: "{title}". Author: {authors}. Publisher: {publisher}. Genres: {genres}. {description}'
)

TEMPLATE_FIELDS = ("title", "authors", "author", "publisher", "genres", "description")

_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_SPACE = re.compile(r"\s+")
# A label whose value came out empty: `Publisher: .`, `Title: "".`, `Genres: ;` and the like.
_EMPTY_LABEL = re.compile(r"(?:^|(?<=\s))[A-Z][\w ]{0,30}:\s*(?:\"\"|''|\(\))?\s*(?:[.;,]|$)(?=\s|$)")
_EMPTY_QUOTES = re.compile(r"(?:\"\"|''|\(\))\s*[.;,]?")
_SENTINEL = "\x00{}\x00"


def clean_text(value: object) -> str:
    """NFC, HTML entities decoded and simple tags dropped, whitespace collapsed; apostrophes kept."""
    if value is None:
        return ""
    text = str(value)
    # Scraped catalogues are sometimes escaped twice (`&amp;amp;`); two rounds undo that.
    for _ in range(2):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    text = _TAG.sub(" ", text)
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
    return _SPACE.sub(" ", text).strip()


def unique_genres(genres: list[str], max_genres: int | None = None) -> list[str]:
    """Cleaned genres in catalogue order, case-insensitive duplicates dropped, capped at max_genres."""
    seen: set[str] = set()
    out: list[str] = []
    for genre in genres or []:
        g = clean_text(genre)
        key = g.casefold()
        if g and key not in seen:
            seen.add(key)
            out.append(g)
    return out if max_genres is None else out[:max_genres]


def check_template(template: str) -> None:
    """Raise CoverforgeError if the template uses a field we do not fill or is not str.format syntax."""
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise CoverforgeError(f"prompt template is not valid str.format syntax ({e}); escape literal braces as {{{{ }}}}") from None
    for f, spec, conv in fields:
        base = re.split(r"[.\[]", f)[0]
        if base not in TEMPLATE_FIELDS:
            raise CoverforgeError(f"prompt template uses unknown field {{{f}}}; available: {', '.join(TEMPLATE_FIELDS)}")
        # Fields are plain text: indexing reads past a short title, attributes print method
        # names, and a format spec can ask for a gigabyte of padding.
        if f != base:
            raise CoverforgeError(f"prompt template field {{{f}}} indexes into or reads an attribute of {{{base}}}; "
                                  f"fields are plain text: write {{{base}}}")
        if spec or conv:
            written = f"{{{f}{'!' + conv if conv else ''}{':' + spec if spec else ''}}}"
            raise CoverforgeError(f"prompt template field {written}: conversions and format specs are not supported; write {{{f}}}")


def template_values(book: dict, max_genres: int = 8) -> dict[str, str]:
    authors = [a for a in (clean_text(a) for a in _as_list(book.get("authors"))) if a]
    return {
        "title": clean_text(book.get("title")),
        "authors": ", ".join(authors),
        "author": authors[0] if authors else "",
        "publisher": clean_text(book.get("publisher")),
        "genres": ", ".join(unique_genres(_as_list(book.get("genres")), max_genres)),
        "description": clean_text(book.get("description")),
    }


def build_prompt(book: dict, template: str | None = None, max_genres: int = 8) -> str:
    """The prompt for one book; labels of empty fields are dropped so no `Publisher: .` remains."""
    template = DEFAULT_TEMPLATE if template is None else template
    check_template(template)
    values = template_values(book, max_genres)
    # Format with sentinels first so the empty-label cleanup never touches the book's own text.
    placeholders = {k: (_SENTINEL.format(i) if v else "") for i, (k, v) in enumerate(values.items())}
    skeleton = template.format(**placeholders)
    skeleton = _EMPTY_LABEL.sub(" ", skeleton)
    skeleton = _EMPTY_QUOTES.sub(" ", skeleton)
    skeleton = re.sub(r"\s+([.,;:])", r"\1", _SPACE.sub(" ", skeleton)).strip()
    for i, (k, v) in enumerate(values.items()):
        if v.endswith((".", "!", "?")):  # "Author: Tolkien Jr." not "Tolkien Jr.."
            skeleton = skeleton.replace(_SENTINEL.format(i) + ".", v)
        skeleton = skeleton.replace(_SENTINEL.format(i), v)
    return skeleton.strip()


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    return [str(v) for v in value]
