"""Cover layouts by short name, and the layout a genre gets by default.

A layout places text groups (title with subtitle, author) in regions given as fractions of the
safe area, says which face each role is set in, and how the text is kept legible over the art:
a gradient from the nearest edge, a full-width band, or a soft patch behind the text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from coverforge.errors import CoverforgeError

TREATMENTS = ("fade_top", "fade_bottom", "band", "soft")
VALIGNS = ("top", "middle", "bottom")


@dataclass(frozen=True)
class TextStyle:
    """How one role (title, subtitle, author) is set. Sizes are fractions of the safe-area height."""

    family: str = "serif"
    """'serif' or 'sans'."""
    bold: bool = False
    max_size: float = 0.1
    """Largest font size tried."""
    min_size: float = 0.03
    """Floor: below it only a single over-long word or an absurdly long text goes."""
    max_lines: int = 3
    """Preferred most lines before the fitter goes down to the floor."""
    leading: float = 1.1
    """Baseline-to-baseline distance in font sizes."""

    def __post_init__(self) -> None:
        if self.family not in ("serif", "sans"):
            raise CoverforgeError(f"text style family must be 'serif' or 'sans', got {self.family!r}")
        if not (0 < self.min_size <= self.max_size < 1):
            raise CoverforgeError(f"text style sizes need 0 < min_size <= max_size < 1, got {self.min_size}, {self.max_size}")
        if self.max_lines < 1 or self.leading <= 0:
            raise CoverforgeError("text style needs max_lines >= 1 and leading > 0")


@dataclass(frozen=True)
class Group:
    """Roles set together, stacked in one region of the safe area."""

    roles: tuple[str, ...]
    """Subset of ('title', 'subtitle', 'author'), top to bottom."""
    region: tuple[float, float, float, float]
    """(left, top, right, bottom) as fractions of the safe area."""
    valign: str = "top"
    """Where the stacked text sits in the region: 'top', 'middle' or 'bottom'."""
    treatment: str = "fade_top"
    """How legibility is bought: 'fade_top', 'fade_bottom', 'band' or 'soft'."""

    def __post_init__(self) -> None:
        if not set(self.roles) <= {"title", "subtitle", "author"} or not self.roles:
            raise CoverforgeError(f"layout group roles must be title/subtitle/author, got {self.roles}")
        l, t, r, b = self.region
        if not (0 <= l < r <= 1 and 0 <= t < b <= 1):
            raise CoverforgeError(f"layout group region {self.region} must be fractions with left < right, top < bottom")
        if self.valign not in VALIGNS or self.treatment not in TREATMENTS:
            raise CoverforgeError(f"layout group needs valign in {VALIGNS} and treatment in {TREATMENTS}")


@dataclass(frozen=True)
class Layout:
    name: str
    title: TextStyle
    subtitle: TextStyle
    author: TextStyle
    groups: tuple[Group, ...]
    gap: float = 0.35
    """Space between roles in a group, in title font sizes."""

    def style(self, role: str) -> TextStyle:
        return {"title": self.title, "subtitle": self.subtitle, "author": self.author}[role]

    def with_face(self, family: str, bold: bool) -> Layout:
        """This layout with title and author set in another face (a user's font choice); the
        subtitle takes the family at its own weight, so it stays the quieter line."""
        return replace(self, title=replace(self.title, family=family, bold=bold), author=replace(self.author, family=family, bold=bold),
                       subtitle=replace(self.subtitle, family=family))


_SERIF_SUB = TextStyle("serif", False, 0.04, 0.016, 2, 1.2)
_SANS_SUB = TextStyle("sans", False, 0.036, 0.016, 2, 1.2)

LAYOUTS: dict[str, Layout] = {
    # Title at the top, author at the foot: the most common trade-book arrangement.
    "classic": Layout(
        "classic",
        title=TextStyle("serif", True, 0.11, 0.035, 3, 1.08),
        subtitle=_SERIF_SUB,
        author=TextStyle("serif", False, 0.05, 0.022, 2),
        groups=(
            Group(("title", "subtitle"), (0.0, 0.0, 1.0, 0.40), "top", "fade_top"),
            Group(("author",), (0.0, 0.88, 1.0, 1.0), "bottom", "fade_bottom"),
        ),
    ),
    # Title on a full-width band across the lower third: thriller and crime shelves.
    "band": Layout(
        "band",
        title=TextStyle("sans", True, 0.10, 0.032, 3, 1.0),
        subtitle=_SANS_SUB,
        author=TextStyle("sans", True, 0.045, 0.02, 2),
        groups=(
            Group(("title", "subtitle"), (0.0, 0.56, 1.0, 0.82), "middle", "band"),
            Group(("author",), (0.0, 0.0, 1.0, 0.08), "top", "fade_top"),
        ),
    ),
    # Everything centred on a soft patch in the middle of the art: romance, poetry.
    "centred": Layout(
        "centred",
        title=TextStyle("serif", False, 0.10, 0.032, 3, 1.1),
        subtitle=TextStyle("serif", False, 0.038, 0.016, 2, 1.2),
        author=TextStyle("serif", False, 0.045, 0.02, 2),
        groups=(
            Group(("title", "subtitle"), (0.06, 0.32, 0.94, 0.64), "middle", "soft"),
            Group(("author",), (0.1, 0.88, 0.9, 1.0), "bottom", "soft"),
        ),
    ),
    # Title and author stacked at the foot, art left clear above: science fiction, non-fiction.
    "bottom": Layout(
        "bottom",
        title=TextStyle("sans", True, 0.10, 0.032, 3, 1.02),
        subtitle=_SANS_SUB,
        author=TextStyle("sans", False, 0.042, 0.02, 2),
        groups=(Group(("title", "subtitle", "author"), (0.0, 0.56, 1.0, 1.0), "bottom", "fade_bottom"),),
    ),
}

DEFAULT_LAYOUT = "classic"
GENRE_LAYOUTS = {
    "thriller": "band",
    "crime": "band",
    "mystery": "band",
    "horror": "band",
    "suspense": "band",
    "romance": "centred",
    "poetry": "centred",
    "womens fiction": "centred",
    "fantasy": "classic",
    "literary": "classic",
    "literary fiction": "classic",
    "historical": "classic",
    "historical fiction": "classic",
    "classics": "classic",
    "science fiction": "bottom",
    "sci-fi": "bottom",
    "scifi": "bottom",
    "non-fiction": "bottom",
    "nonfiction": "bottom",
    "biography": "bottom",
    "business": "bottom",
    "self-help": "bottom",
}


def layout_for_genre(genre: str) -> str:
    """Layout name for a genre (case and spacing ignored); the classic layout for anything unknown."""
    key = " ".join(str(genre).lower().replace("_", " ").split())
    if key in GENRE_LAYOUTS:
        return GENRE_LAYOUTS[key]
    for name, layout in GENRE_LAYOUTS.items():
        if name in key:  # "dark fantasy", "psychological thriller"
            return layout
    return DEFAULT_LAYOUT


def get_layout(name: str | None = None, genre: str | None = None) -> Layout:
    """The layout by name, else by genre, else the default."""
    if name is None:
        name = layout_for_genre(genre) if genre else DEFAULT_LAYOUT
    if name not in LAYOUTS:
        raise CoverforgeError(f"layout {name!r} is not known: use one of {', '.join(LAYOUTS)}")
    return LAYOUTS[name]
