"""Fonts for cover type: a serif and a sans, regular and bold, that cover Latin text without tofu.

Lookup order per face: the OFL fonts bundled in coverforge/assets/fonts (Source Serif/Sans Pro),
matplotlib's bundled DejaVu if matplotlib is installed, the system's DejaVu, and last Pillow's
built-in scalable font. A face is only used for a text when it has a glyph for every character
of it, so an unusual character (say, Greek in a Latin title) falls through to DejaVu instead of
rendering as empty boxes.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FAMILIES = ("serif", "sans")
ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "fonts"
SYSTEM_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian, Ubuntu
    Path("/usr/share/fonts/dejavu"),  # Fedora, Arch
    Path("/usr/share/fonts/TTF"),
    Path("/usr/local/share/fonts"),
    Path("/Library/Fonts"),
)
BUNDLED = {
    ("serif", False): "SourceSerifPro-Regular.ttf",
    ("serif", True): "SourceSerifPro-Bold.ttf",
    ("sans", False): "SourceSansPro-Regular.ttf",
    ("sans", True): "SourceSansPro-Bold.ttf",
}
DEJAVU = {
    ("serif", False): "DejaVuSerif.ttf",
    ("serif", True): "DejaVuSerif-Bold.ttf",
    ("sans", False): "DejaVuSans.ttf",
    ("sans", True): "DejaVuSans-Bold.ttf",
}
# A noncharacter: every font maps it to glyph 0 (.notdef), the "tofu" box we must not draw.
_MISSING = "\uffff"


def _matplotlib_font_dir() -> Path | None:
    spec = importlib.util.find_spec("matplotlib")  # find, not import: importing it is slow
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf"


def font_candidates(family: str, bold: bool) -> list[Path]:
    """Existing font files for a face, best first."""
    if family not in FAMILIES:
        raise ValueError(f"font family must be one of {FAMILIES}, got {family!r}")
    key = (family, bold)
    paths = [ASSET_DIR / BUNDLED[key]]
    mpl = _matplotlib_font_dir()
    if mpl is not None:
        paths.append(mpl / DEJAVU[key])
    paths += [d / DEJAVU[key] for d in SYSTEM_FONT_DIRS]
    return [p for p in paths if p.is_file()]


@lru_cache(maxsize=512)
def _truetype(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@lru_cache(maxsize=64)
def _missing_chars(path: str, chars: frozenset[str]) -> frozenset[str]:
    font = _truetype(path, 32)

    def ink(char: str) -> bytes:
        image = Image.new("L", (64, 64))
        ImageDraw.Draw(image).text((16, 16), char, font=font, fill=255)
        return image.tobytes()

    tofu = ink(_MISSING)
    return frozenset(c for c in chars if ink(c) == tofu)


def missing_glyphs(font_path: str | Path, text: str) -> set[str]:
    """Characters of `text` (whitespace aside) that the font would draw as .notdef boxes."""
    chars = frozenset(c for c in text if not c.isspace())
    return set(_missing_chars(str(font_path), chars))


def font_path_for(family: str, bold: bool, text: str = "") -> Path | None:
    """The first candidate face with a glyph for every character of `text` (else the one missing
    fewest); None when no font file is found at all."""
    candidates = font_candidates(family, bold)
    if not candidates:
        return None
    return min(candidates, key=lambda path: len(missing_glyphs(path, text)))


def load_font(family: str, bold: bool, size: int, text: str = "") -> ImageFont.FreeTypeFont:
    """A FreeType font of `size` px for `text`; Pillow's built-in font if no file is found."""
    size = max(1, int(size))
    path = font_path_for(family, bold, text)
    if path is None:
        return ImageFont.load_default(size)
    return _truetype(str(path), size)
