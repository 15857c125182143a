"""Cover page work: typeset chosen art with `covers.compose.make_cover` (ebook and print fronts)
or `covers.print_wrap.make_print_wrap` (full wrap), and write PNG, PDF and proof."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from coverforge.errors import CoverforgeError
from coverforge.studio.workspace import Workspace

FORMATS = ("ebook", "print", "wrap")
MAX_UPLOAD_BYTES = 30 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000
"""An 8K x 5K image; more than any cover needs, and far below what would exhaust memory."""


@dataclass(frozen=True)
class CoverSpec:
    art: str
    """Workspace-relative image: a candidate or an upload."""
    title: str
    author: str = ""
    subtitle: str = ""
    layout: str = ""
    """A layout name; empty: the genre's layout."""
    font: str = ""
    """A bundled font's name for title and author; empty: the layout's faces."""
    genre: str = ""
    format: str = "ebook"
    """ebook (1600x2560 px), print (front with bleed at `trim`) or wrap (back, spine, front)."""
    trim: str = "6x9in"
    pages: int = 300
    paper: str = "white"
    back_text: str = ""


def layouts() -> list[dict]:
    """Every layout with the typefaces it sets title and author in when no font is chosen."""
    from coverforge.covers.fonts import face_label
    from coverforge.covers.layouts import LAYOUTS

    return [{"name": name, "title_font": face_label(l.title.family, l.title.bold), "author_font": face_label(l.author.family, l.author.bold)}
            for name, l in LAYOUTS.items()]


def fonts() -> list[dict]:
    """The bundled fonts the Cover page offers, with the URL the page previews each from."""
    from coverforge.covers.fonts import bundled_fonts

    return [{"name": f.name, "label": f.label, "family": f.family, "bold": f.bold, "url": f"/fonts/{f.file}"} for f in bundled_fonts()]


def open_art(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            check_pixels(image.size, path.name)
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise CoverforgeError(f"art {path.name} is not a readable image: {e}") from None


def check_pixels(size: tuple[int, int], name: str) -> None:
    if size[0] * size[1] > MAX_UPLOAD_PIXELS:
        raise CoverforgeError(f"image {name} is {size[0]}x{size[1]} pixels: the studio takes at most {MAX_UPLOAD_PIXELS // 1_000_000} megapixels")


def save_upload(ws: Workspace, data: bytes) -> Path:
    """Check an uploaded image (format, pixel count) and store it as PNG under studio/uploads."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            check_pixels(image.size, "upload")  # before decoding: the header alone gives the size
            image.load()
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise CoverforgeError(f"the upload is not a readable image (PNG, JPEG or WebP): {e}") from None
    folder = ws.output / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}.png"
    if not path.exists():
        rgb.save(path)
    return path


def make(ws: Workspace, spec: CoverSpec) -> dict:
    """Typeset, then write cover.png, cover.pdf and proof.png under studio/covers/<id>/."""
    from coverforge.covers.compose import make_cover, save_cover, typefaces
    from coverforge.covers.legibility import readable_cover
    from coverforge.covers.print_wrap import make_print_wrap
    from coverforge.covers.sizes import parse_trim

    if spec.format not in FORMATS:
        raise CoverforgeError(f"format {spec.format!r}: choose one of {', '.join(FORMATS)}")
    art = open_art(ws.path(spec.art, "art"))
    layout, genre, font = spec.layout or None, spec.genre or None, spec.font or None
    # As `coverforge cover` does: OCR reads the front back, and the scrim is strengthened until
    # every word reads (or the best attempt is kept). The page shows the figures, never refuses.
    if spec.format == "wrap":
        result, legibility = readable_cover(lambda floor: make_print_wrap(
            art, spec.title, spec.author, spec.subtitle, spec.trim, pages=spec.pages, paper=spec.paper,
            back_text=spec.back_text, layout=layout, genre=genre, scrim_floor=floor, font=font))
        summary = {"spine_in": round(result.spine_width_in, 4), "layout": result.layout}
    else:
        if spec.format == "print":
            parse_trim(spec.trim)  # a print front is sized in inches; 'WxHpx' belongs to no printer
        size = "ebook" if spec.format == "ebook" else spec.trim
        result, legibility = readable_cover(lambda floor: make_cover(art, spec.title, spec.author, spec.subtitle, size, layout, genre, scrim_floor=floor, font=font))
        summary = {"layout": result.layout}
    # What the lines were drawn in, read off their fonts: the proof of which face the choice reached.
    summary["font"] = result.font
    summary["typefaces"] = typefaces(result.boxes)
    summary["legibility"] = {"title_reads": legibility.title_reads, "summary": legibility.summary(), "scrim_floor": legibility.scrim_floor,
                             "full": {role: r.to_dict() for role, r in legibility.full.items()}}
    out = ws.output_dir("covers", secrets.token_hex(6))
    png, pdf, proof = out / "cover.png", out / "cover.pdf", out / "proof.png"
    save_cover(result.image, result.size, png)
    save_cover(result.image, result.size, pdf)
    result.proof().save(proof)
    size = result.size
    made = {
        "png": ws.rel(png), "pdf": ws.rel(pdf), "proof": ws.rel(proof),
        "width_px": size.width_px, "height_px": size.height_px,
        "width_in": round(size.width_in, 3), "height_in": round(size.height_in, 3), "name": size.name,
        "contrast": round(result.contrast, 2), **summary,
    }
    # Beside the files: what was asked for and what came out (layout, font, faces, read-back).
    (out / "cover.json").write_text(json.dumps({"spec": asdict(spec), **made}, indent=1), encoding="utf-8")
    return made
