"""Cover image checks: full decode, orientation, 8-bit RGB, size/shape/colour filters and hashes.

Everything that can go wrong with an image file goes wrong here, during preparation, so that
training never meets a truncated JPEG or a CMYK scan. `check_cover` raises `ImageRejected` with a
short reason; the caller turns that into a report line.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft
from PIL import ExifTags, Image, ImageOps

from coverforge.data.colour import colourfulness
from coverforge.hashing import file_sha256, sha256_hex  # noqa: F401 - file_sha256 re-exported: data callers import it from here

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif")
# Formats covers come in that this Pillow may not read: named in the reason, with what to do.
UNSUPPORTED = {".heic": "HEIC", ".heif": "HEIF", ".jxl": "JPEG XL", ".psd": "Photoshop", ".svg": "SVG", ".pdf": "PDF",
               ".raw": "camera raw", ".cr2": "camera raw", ".nef": "camera raw", ".dng": "camera raw"}
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")
# 8192x8192: larger than any cover scan, small enough that decoding cannot exhaust memory.
MAX_PIXELS = 8192 * 8192
# Colourfulness is measured on a copy this size: the statistic is stable under downscaling and
# a full-size 1000x1500 float64 pass would dominate the check time.
_COLOUR_SIDE = 512


class ImageRejected(Exception):
    """The image cannot or should not be used; str(e) is the reason for the report."""


@dataclass(frozen=True)
class CoverChecks:
    min_size: int = 256
    """Shorter side in pixels below which a cover is rejected."""
    orientation: str = "portrait"
    """'portrait' (height > width), 'landscape' (width > height) or 'any'."""
    grayscale_threshold: float | None = 8.0
    """Colourfulness below which a cover counts as grayscale and is rejected; None keeps them."""
    max_pixels: int = MAX_PIXELS
    """Decompression-bomb guard: larger images are rejected before decoding."""


@dataclass(frozen=True)
class CheckedCover:
    image: Image.Image
    """8-bit RGB, upright."""
    changed: bool
    """True when the file cannot be copied as is (rotated, converted, or not JPEG/PNG/WebP)."""
    format: str
    """The file's format as Pillow names it (JPEG, PNG, ...)."""
    colourfulness: float


def open_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open and fully decode an image, refusing decompression bombs before decoding; raises
    ImageRejected with a reason a person can act on. The one loader for user images."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            if image.width * image.height > max_pixels:
                raise ImageRejected(f"too many pixels ({image.width}x{image.height}; decompression-bomb guard, "
                                    f"at most {max_pixels} pixels)")
            image.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageRejected(f"too many pixels (decompression-bomb guard: {e})") from e
    except FileNotFoundError:
        raise ImageRejected("file not found") from None
    except Exception as e:  # Pillow raises many types for bad files; all mean "unreadable"
        kind = unsupported_kind(path)
        if kind:
            raise ImageRejected(f"{kind} image: this Pillow cannot read {kind}; convert it to JPEG or PNG") from e
        raise ImageRejected(f"unreadable image: {type(e).__name__}: {e}") from e
    return image


def unsupported_kind(path: str | Path) -> str:
    """The name of a format covers come in that Pillow here cannot read, by magic bytes or suffix; '' if none."""
    head = b""
    if Path(path).is_file():  # never open a named pipe: the read would wait forever
        try:
            with open(path, "rb") as f:
                head = f.read(16)
        except OSError:
            pass
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIC"
    return UNSUPPORTED.get(Path(path).suffix.lower(), "")


def jpeg_damage(path: str | Path) -> str:
    """Why a JPEG's data is damaged, or ''. Pillow (libjpeg with its warnings silenced) decodes a
    JPEG with corrupt or missing entropy-coded data into a partly grey image without a word;
    libjpeg-turbo in strict mode reports it. Decoded at 1/8 scale: every coefficient is still
    read, which is where damage shows, at a fraction of the cost."""
    import simplejpeg

    data = Path(path).read_bytes()
    try:
        header = simplejpeg.decode_jpeg_header(data)
        colourspace = {"CMYK": "CMYK", "YCCK": "CMYK", "Gray": "GRAY"}.get(header[2], "RGB")
        simplejpeg.decode_jpeg(data, colorspace=colourspace, min_factor=8, strict=True)
    except ValueError as e:
        return str(e).strip().rstrip(".")
    return ""


def check_cover(path: str | Path, checks: CoverChecks) -> CheckedCover:
    """Decode fully, make upright 8-bit RGB and apply the filters; raises ImageRejected."""
    image = open_image(path, checks.max_pixels)
    fmt = image.format
    if fmt == "JPEG":
        damage = jpeg_damage(path)
        if damage:
            raise ImageRejected(f"corrupt JPEG data ({damage}): it decodes with damage; replace the file")
    rotated = image.getexif().get(ExifTags.Base.Orientation, 1) not in (0, 1)
    upright = ImageOps.exif_transpose(image) if rotated else image
    rgb = to_rgb8(upright)
    changed = rotated or image.mode != "RGB" or fmt not in ("JPEG", "PNG", "WEBP")
    w, h = rgb.size
    if min(w, h) < checks.min_size:
        raise ImageRejected(f"too small ({w}x{h}; shorter side < {checks.min_size})")
    if checks.orientation == "portrait" and h <= w:
        raise ImageRejected(f"not portrait ({w}x{h})")
    if checks.orientation == "landscape" and w <= h:
        raise ImageRejected(f"not landscape ({w}x{h})")
    colour = colourfulness(_small(rgb))
    if checks.grayscale_threshold is not None and colour < checks.grayscale_threshold:
        raise ImageRejected(f"grayscale (colourfulness {colour:.1f} < {checks.grayscale_threshold:g})")
    return CheckedCover(rgb, changed, fmt or "", colour)


def to_rgb8(image: Image.Image) -> Image.Image:
    """8-bit RGB: 16-bit and float modes rescaled, palette/alpha composited on white, CMYK converted."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _small(image: Image.Image) -> Image.Image:
    factor = max(1, max(image.size) // _COLOUR_SIDE)
    return image.reduce(factor) if factor > 1 else image


def pixel_sha256(image: Image.Image) -> str:
    """Content hash of the decoded pixels: the same cover in two containers hashes the same."""
    return sha256_hex(f"{image.mode}{image.size}".encode(), image.tobytes())


def dhash(image: Image.Image, size: int = 8) -> int:
    """Difference hash (Krawetz 2013): sign of horizontal gradients on a (size+1)xsize grayscale thumbnail."""
    small = np.asarray(_gray_thumb(image).resize((size + 1, size), Image.Resampling.BILINEAR), dtype=np.int16)
    return _bits_to_int(small[:, 1:] > small[:, :-1])


def phash(image: Image.Image, size: int = 8, highfreq: int = 4) -> int:
    """Perceptual hash (Zauner 2010): low-frequency DCT coefficients of a 32x32 thumbnail vs their median."""
    n = size * highfreq
    small = np.asarray(_gray_thumb(image).resize((n, n), Image.Resampling.BILINEAR), dtype=np.float64)
    low = scipy.fft.dctn(small, norm="ortho")[:size, :size]
    return _bits_to_int(low > np.median(low))


def _gray_thumb(image: Image.Image) -> Image.Image:
    # A box-reduced copy (shorter side >= 128) first: the hashes only see a 32x32 thumbnail, and
    # resampling the full cover to it would cost more than the rest of the hashing.
    factor = max(1, min(image.size) // 128)
    return (image.reduce(factor) if factor > 1 else image).convert("L")


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _bits_to_int(bits: np.ndarray) -> int:
    return int("".join("1" if b else "0" for b in bits.ravel()), 2)


def downscale(image: Image.Image, max_side: int | None) -> Image.Image:
    """Shrink (LANCZOS, aspect kept) so the long side is at most max_side; never enlarges."""
    if not max_side or max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # reducing_gap: large reductions box-reduce first, then LANCZOS; visually identical, much faster.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
