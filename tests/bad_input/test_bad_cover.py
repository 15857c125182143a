"""`cover` with hostile inputs: bombs, absurd page counts, other encodings, unwritable outputs, missing glyphs."""

from __future__ import annotations

import logging
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from bad_input_kit import cover
from bad_input_kit import cli, one_torch_thread, tiny_clip_dir  # noqa: F401 - fixtures


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims width x height: a decompression bomb as Pillow sees it on open."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def art(tmp_path) -> Path:
    return cover(tmp_path / "art.png", 200, 300)


def test_decompression_bomb_is_refused_as_in_prepare(tmp_path, cli):
    bomb = png_claiming(tmp_path / "bomb.png", 30000, 30000)
    cli.fails("cover", bomb, "--title", "T", "--author", "A", "--out", tmp_path / "c.png", mentions=("bomb.png", "pixels"))


def test_art_just_over_the_guard_is_refused(tmp_path, cli):
    big = png_claiming(tmp_path / "big.png", 9000, 9000)  # under Pillow's own limit, over the 8192x8192 guard
    cli.fails("cover", big, "--title", "T", "--author", "A", "--out", tmp_path / "c.png", mentions=("big.png",))


def test_heic_art_is_one_line(tmp_path, cli):
    heic = tmp_path / "art.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(100))
    cli.fails("cover", heic, "--title", "T", "--author", "A", "--out", tmp_path / "c.png", mentions=("HEIC",))


@pytest.mark.parametrize("pages", ["100000", "0", "-3"])
def test_page_count_out_of_range_is_one_line(tmp_path, cli, art, pages):
    cli.fails("cover", art, "--title", "T", "--author", "A", f"--pages={pages}", "--out", tmp_path / "w.pdf", mentions=("--pages",))


def test_back_text_in_latin1_is_read_with_a_warning(tmp_path, cli, art, caplog):
    blurb = tmp_path / "blurb.txt"
    blurb.write_bytes("Une histoire de café et de crème brûlée.".encode("cp1252"))
    with caplog.at_level(logging.WARNING):
        code, _, err = cli("cover", art, "--title", "The Salt Road", "--author", "Mara Ellison", "--pages", "200", "--back-text", blurb,
                           "--out", tmp_path / "w.pdf")
    assert code == 0, err
    assert "Windows-1252" in caplog.text and "blurb.txt" in caplog.text


def test_back_text_that_is_binary_is_one_line(tmp_path, cli, art):
    blurb = tmp_path / "blurb.txt"
    blurb.write_bytes(bytes(range(256)) * 4)
    cli.fails("cover", art, "--title", "T", "--author", "A", "--pages", "200", "--back-text", blurb, "--out", tmp_path / "w.pdf",
              mentions=("blurb.txt",))


def test_out_under_a_regular_file_is_one_line(tmp_path, cli, art):
    (tmp_path / "file.txt").write_text("x")
    cli.fails("cover", art, "--title", "T", "--author", "A", "--out", tmp_path / "file.txt" / "c.png", mentions=("--out",))


def test_out_that_is_a_folder_is_one_line(tmp_path, cli, art):
    (tmp_path / "c.png").mkdir()
    cli.fails("cover", art, "--title", "T", "--author", "A", "--out", tmp_path / "c.png", mentions=("--out",))


def test_out_with_an_unknown_image_type_is_one_line(tmp_path, cli, art):
    cli.fails("cover", art, "--title", "T", "--author", "A", "--out", tmp_path / "c.xyz", mentions=("--out",))


def test_title_no_font_can_draw_warns_and_names_the_characters(art, caplog, monkeypatch):
    from coverforge.covers import fonts
    from coverforge.covers.compose import make_cover

    monkeypatch.setattr(fonts, "system_fonts_for", lambda chars: [])  # as on a machine without CJK or emoji fonts
    fonts._warn_missing.cache_clear()  # warned once per process: start this test's count at zero
    with caplog.at_level(logging.WARNING):
        make_cover(Image.open(art), "東京 Story 🚀", "A", size="400x640px")
    assert "東" in caplog.text and "🚀" in caplog.text
    assert caplog.text.count("東") == 1  # once, not once per size tried


def test_title_falls_back_to_a_system_font_that_has_its_characters():
    from coverforge.covers import fonts

    text = "𝔄 ∮ ⨁"  # math letters: neither Source Serif nor DejaVu Serif has them
    if shutil.which("fc-list") is None or not Path("/usr/share/fonts/truetype/dejavu/DejaVuMathTeXGyre.ttf").is_file():
        pytest.skip("needs fontconfig and DejaVu Math TeX Gyre (fonts-dejavu) as the system font that has them")
    assert all(fonts.missing_glyphs(p, text) for p in fonts.font_candidates("serif", False))
    assert not fonts.missing_glyphs(fonts.font_path_for("serif", False, text), text)
