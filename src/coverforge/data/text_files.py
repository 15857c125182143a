"""Text from files users hand us: captions, catalogues, configs, prompt lists, templates, blurbs.

One decoder for all of them, so a file reads the same everywhere: a byte-order mark names the
encoding (UTF-8, UTF-16, UTF-32); otherwise UTF-8, strictly; UTF-16 without a mark is recognised
by its zero bytes; what remains is read as Windows-1252 (a superset of Latin-1, what spreadsheets
on Windows save) with a warning naming the file. A file that is none of these is refused in one
line. No decoder here ever substitutes U+FFFD: text is either read right or not read.
"""

from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path

from coverforge.errors import CoverforgeError

log = logging.getLogger(__name__)

# UTF-32 first: its little-endian mark begins with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
LEGACY = "cp1252"
# Control characters that no text file holds (tab, newlines, form feed and escape aside): their
# presence means the bytes are not text in the encoding tried.
_BINARY = re.compile("[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
_NOT_UTF8 = re.compile("[\udc80-\udcff]+")


def read_text(path: str | Path, what: str = "") -> str:
    """The text of a user's file, decoded as the module docstring says; one-line errors that name it."""
    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    if path.exists() and not path.is_dir() and not path.is_file():  # reading a named pipe or a device waits forever
        raise CoverforgeError(f"{name} is not a regular file (a pipe or a device); give a text file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CoverforgeError(f"{name} does not exist") from None
    except IsADirectoryError:
        raise CoverforgeError(f"{name} is a folder; give a text file") from None
    except OSError as e:
        raise CoverforgeError(f"cannot read {name}: {e.strerror}") from None
    return decode_text(data, name)


def decode_text(data: bytes, name: str) -> str:
    """`data` as text; `name` (the file, as the user knows it) goes into the warning or the error."""
    text = _by_bom(data, name)
    if text is None:
        text = _utf16_without_bom(data)
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is None:
        try:
            text = data.decode(LEGACY)
        except UnicodeDecodeError as e:
            raise CoverforgeError(f"{name} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start} has no character "
                                  "in Windows-1252 either); save it as UTF-8") from None
        if not _BINARY.search(text):
            log.warning("%s is not UTF-8: read it as Windows-1252 (Latin-1); save it as UTF-8 to be sure of every accent", name)
    if _BINARY.search(text):
        raise CoverforgeError(f"{name} is not a text file (it holds control bytes); give a UTF-8 text file")
    return text


def decode_mixed(data: bytes, name: str) -> str:
    """Like decode_text, but a UTF-8 file with stray Windows-1252 bytes (a spreadsheet export
    edited in two programs) keeps its UTF-8 and reads only those bytes as Windows-1252, with one
    warning counting them. Bytes Windows-1252 leaves undefined become Latin-1 control characters,
    which prompt cleaning turns into spaces: never a replacement mark. Control bytes are left to
    the caller (catalogues carry stray NULs)."""
    if _by_bom(data, name) is not None or _utf16_without_bom(data) is not None:
        return decode_text(data, name)
    text = data.decode("utf-8", errors="surrogateescape")
    runs = _NOT_UTF8.findall(text)
    if not runs:
        return text
    log.warning("%s: %d byte sequences are not UTF-8; read them as Windows-1252 (Latin-1)", name, len(runs))
    return _NOT_UTF8.sub(lambda m: _legacy(m.group().encode("utf-8", "surrogateescape")), text)


def _legacy(raw: bytes) -> str:
    return "".join(bytes([b]).decode(LEGACY, errors="strict") if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else chr(b) for b in raw)


def _by_bom(data: bytes, name: str) -> str | None:
    for bom, encoding, label in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(encoding)
            except UnicodeDecodeError as e:
                raise CoverforgeError(f"{name} starts with a {label} byte-order mark but is not valid {label} "
                                      f"(offset {e.start + len(bom)}); save it as UTF-8") from None
    return None


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text without a mark: mostly Latin text, so one byte of most pairs is zero, always
    the same one. None when the bytes do not look like that."""
    if len(data) < 4 or len(data) % 2 or b"\x00" not in data:
        return None
    even, odd = data[0::2], data[1::2]
    pairs = len(data) // 2
    for zeros, other, encoding in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if zeros.count(0) >= pairs * 0.4 and other.count(0) == 0:
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    return None
