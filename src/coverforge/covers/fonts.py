"""Fonts for cover type: a serif and a sans, regular and bold, that cover Latin text without tofu.

Lookup order per face: the OFL fonts bundled in coverforge/assets/fonts (Source Serif/Sans Pro),
matplotlib's bundled DejaVu if matplotlib is installed, the system's DejaVu, and last Pillow's
built-in scalable font. A face is only used for a text when it has a glyph for every character
of it, so an unusual character (say, Greek in a Latin title) falls through to DejaVu instead of
rendering as empty boxes. Where none of those has them (CJK, emoji, math letters), any installed
font that has every character is used (found through fontconfig); where there is none, a warning
names the characters that will print as boxes.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from coverforge.errors import CoverforgeError

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
FAMILY_LABELS = {"serif": "Source Serif", "sans": "Source Sans"}
DEJAVU = {
    ("serif", False): "DejaVuSerif.ttf",
    ("serif", True): "DejaVuSerif-Bold.ttf",
    ("sans", False): "DejaVuSans.ttf",
    ("sans", True): "DejaVuSans-Bold.ttf",
}
# A noncharacter: every font maps it to glyph 0 (.notdef), the "tofu" box we must not draw.
_MISSING = "\uffff"
# Without fontconfig, these folders are searched for Noto fonts (the usual home of CJK and emoji).
NOTO_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts", Path("/Library/Fonts"),
             Path("/System/Library/Fonts"), Path("C:/Windows/Fonts"))
_SCALABLE = (".ttf", ".otf", ".ttc")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BundledFont:
    """A face a cover may be set in instead of its layout's (`--font`, the studio's font picker)."""

    name: str
    """What a user types: 'source-serif-bold'."""
    label: str
    """What a page shows: 'Source Serif Bold'."""
    family: str
    bold: bool
    file: str
    """File name under ASSET_DIR."""


def face_label(family: str, bold: bool) -> str:
    return FAMILY_LABELS[family] + (" Bold" if bold else "")


def bundled_fonts() -> list[BundledFont]:
    """The faces shipped with coverforge (OFL), in a stable order: serif before sans, regular before bold."""
    return [BundledFont(face_label(family, bold).lower().replace(" ", "-"), face_label(family, bold), family, bold, BUNDLED[(family, bold)])
            for family in FAMILIES for bold in (False, True)]


def get_font(name: str) -> BundledFont:
    """A bundled face by its name (or its label: case, spaces and hyphens are not told apart)."""
    key = "-".join(str(name).lower().replace("_", " ").replace("-", " ").split())
    fonts = bundled_fonts()
    for font in fonts:
        if key == font.name:
            return font
    raise CoverforgeError(f"font {name!r} is not a bundled font: use one of {', '.join(f.name for f in fonts)}")


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
    try:
        font = _truetype(path, 32)
    except OSError:  # a bitmap-only face (colour emoji) has no 32 px size: unusable here
        return chars

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


@lru_cache(maxsize=64)
def system_fonts_for(chars: frozenset[str]) -> list[Path]:
    """Installed scalable fonts with a glyph for every one of `chars`: fontconfig's answer where
    `fc-list` exists, else the Noto fonts in the usual folders that have them."""
    if not chars:
        return []
    fc_list = shutil.which("fc-list")
    if fc_list is not None:
        query = ":charset=" + " ".join(f"{ord(c):x}" for c in sorted(chars))
        try:
            listing = subprocess.run([fc_list, query, "file"], capture_output=True, text=True, timeout=20, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        paths = sorted({Path(line.split(":")[0].strip()) for line in listing.splitlines() if line.strip()})
    else:
        paths = sorted(p for d in NOTO_DIRS if d.is_dir() for p in d.rglob("Noto*") if p.suffix.lower() in _SCALABLE)
    return [p for p in paths if p.suffix.lower() in _SCALABLE and p.is_file() and not missing_glyphs(p, "".join(chars))]


def font_path_for(family: str, bold: bool, text: str = "") -> Path | None:
    """The first candidate face with a glyph for every character of `text`, then an installed font
    that has them all, else the face missing fewest; None when no font file is found at all."""
    candidates = font_candidates(family, bold)
    if not candidates:
        return None
    best = min(candidates, key=lambda path: len(missing_glyphs(path, text)))
    missing = missing_glyphs(best, text)
    if missing:
        fallback = system_fonts_for(frozenset(c for c in text if not c.isspace()))
        if fallback:
            return _preferred(fallback, family, bold)
        _warn_missing(frozenset(missing))
    return best


def _preferred(paths: list[Path], family: str, bold: bool) -> Path:
    """Among fonts that all draw the text, the one whose file name best fits the face asked for."""
    def score(path: Path) -> tuple:
        name = path.name.lower()
        return (("bold" in name) != bold, ("serif" in name and "sans" not in name) != (family == "serif"), name)

    return min(paths, key=score)


@lru_cache(maxsize=256)
def _warn_missing(chars: frozenset[str]) -> None:
    """Once per set of characters: fitting tries many sizes, and each asks for the font again."""
    shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in sorted(chars))
    log.warning("no installed font has %s: they will print as boxes; install a font that has them "
                "(e.g. Noto Sans CJK for Chinese/Japanese/Korean) or change the text", shown)


def load_font(family: str, bold: bool, size: int, text: str = "") -> ImageFont.FreeTypeFont:
    """A FreeType font of `size` px for `text`; Pillow's built-in font if no file is found."""
    size = max(1, int(size))
    path = font_path_for(family, bold, text)
    if path is None:
        return ImageFont.load_default(size)
    return _truetype(str(path), size)
