"""The lettering check: OCR reads finished covers back (CER, word accuracy), offline."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from PIL import Image

from coverforge.cli.main import main
from coverforge.covers import legibility, ocr, typeset
from coverforge.covers.compose import make_cover
from coverforge.covers.layouts import LAYOUTS
from coverforge.covers.legibility import check_cover, check_legibility, readable_cover
from coverforge.covers.ocr import TextRegion, ocr_engine, reading_order
from coverforge.covers.readback import character_error_rate, normalise, read_back, word_accuracy
from coverforge.covers.typeset import TextLine, draw_lines
from test_covers_typography import make_art

SIZE = "800x1280px"  # the ebook's aspect; OCR works at 1280 px on the long side for the ebook too


@pytest.fixture(scope="session")
def engine():
    """The process's one OCR engine, built once for every test here."""
    return ocr_engine()


def noise_blocks(size: tuple[int, int] = (800, 1280), block: int = 8, seed: int = 0) -> Image.Image:
    """High-frequency black-and-white blocks: the busy art on which a 4.8:1 title did not read."""
    rng = np.random.default_rng(seed)
    w, h = size
    cells = rng.integers(0, 2, (h // block + 1, w // block + 1))
    pixels = np.kron(cells, np.ones((block, block)))[:h, :w] * 255
    return Image.fromarray(np.repeat(pixels[..., None], 3, axis=2).astype(np.uint8))


ARTS = {"light": lambda: make_art("light", (500, 800), 1), "dark": lambda: make_art("dark", (500, 800), 2),
        "busy": lambda: make_art("busy", (500, 800), 3), "noise": noise_blocks}


def test_normalising_and_the_two_figures():
    assert normalise("  The SALT-road!\n") == "the salt road"
    assert character_error_rate("The Salt Road", "the salt road.") == 0.0
    assert character_error_rate("The Salt Road", "TheSalt Road") == 0.0  # spacing of display type is not a misreading
    assert word_accuracy("The Salt Road", "TheSalt Road") == 1.0
    assert character_error_rate("The Salt Road", "he Salt") == pytest.approx(5 / 11)
    assert word_accuracy("The Salt Road", "he Salt") == pytest.approx(1 / 3)
    assert word_accuracy("The Salt Road", "The Sa1t Road") == pytest.approx(2 / 3)
    assert character_error_rate("Les Misérables", "Les Miserables") == pytest.approx(1 / 13)  # accents count
    assert character_error_rate("The Salt Road", "") == 1.0 and word_accuracy("The Salt Road", "") == 0.0


def test_read_back_without_boxes_finds_the_best_run_of_lines():
    regions = reading_order([TextRegion((10, 300, 90, 330), "Mara Ellison", 0.9), TextRegion((10, 10, 90, 40), "The Salt", 0.9),
                             TextRegion((100, 12, 140, 38), "1884", 0.9), TextRegion((10, 50, 90, 80), "Road", 0.9)])
    assert [r.text for r in regions] == ["The Salt", "1884", "Road", "Mara Ellison"]
    assert read_back("Mara Ellison", regions).cer == 0.0
    title = read_back("The Salt Road", regions)
    assert title.word_accuracy == 1.0 and title.cer > 0  # "1884" sits between the title's lines
    assert read_back("The Salt Road", regions, where=[(0, 0, 95, 45), (0, 45, 95, 85)]).read == "The Salt Road"


def test_the_engine_is_built_once_per_process(engine):
    assert ocr_engine() is engine


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("kind", list(ARTS))
def test_every_layout_reads_back_exactly_at_full_size(engine, kind, layout):
    cover = make_cover(ARTS[kind](), "The Salt Road", "Mara Ellison", size=SIZE, layout=layout)
    reads = check_cover(cover)
    assert reads.full["title"].cer == 0.0, reads.full["title"]
    assert reads.full["author"].cer == 0.0, reads.full["author"]
    assert set(reads.thumbnail) == {"title", "author"} and reads.thumbnail_width == 160


def test_text_in_the_background_colour_fails_the_check(engine):
    grey = (128, 128, 128)
    cover = make_cover(Image.new("RGB", (800, 1280), grey), "The Salt Road", "Mara Ellison", size=SIZE)
    hidden = [TextLine(l.role, l.text, l.origin, l.box, l.font, grey) for l in cover.boxes]
    image = Image.new("RGB", cover.image.size, grey)
    draw_lines(image, hidden)
    reads = check_legibility(image, hidden)
    assert not reads.title_reads and reads.full["title"].cer == 1.0 and reads.full["title"].word_accuracy == 0.0
    # The same lines in their chosen colour read: the check tells the two apart.
    assert check_legibility(cover.image, cover.boxes).title_reads


def test_contrast_alone_left_busy_art_unread_and_the_texture_rule_fixes_it(engine, monkeypatch):
    """The issue's case: ebook, classic, 8-px noise. Scrimmed for WCAG contrast only (4.8:1 here),
    the OCR loses letters; with the texture rule every letter reads back."""
    art = noise_blocks()
    with monkeypatch.context() as m:
        m.setattr(typeset, "MAX_CLUTTER", float("inf"))
        contrast_only = make_cover(art, "The Salt Road", "Mara Ellison", size="ebook", layout="classic")
        assert contrast_only.contrast < 6
        assert check_cover(contrast_only).full["title"].cer > 0
    cover = make_cover(art, "The Salt Road", "Mara Ellison", size="ebook", layout="classic")
    reads = check_cover(cover)
    assert reads.full["title"].cer == 0.0 and reads.full["author"].cer == 0.0


def test_ocr_feedback_strengthens_the_scrim_until_the_title_reads(engine, monkeypatch):
    monkeypatch.setattr(typeset, "MAX_CLUTTER", float("inf"))  # contrast only: the first attempt fails
    art = noise_blocks()
    cover, reads = readable_cover(lambda floor: make_cover(art, "The Salt Road", "Mara Ellison", size="ebook", layout="classic", scrim_floor=floor))
    assert reads.title_reads and reads.full["title"].cer == 0.0
    assert reads.scrim_floor > 0 and reads.attempts[0]["scrim_floor"] == 0.0 and reads.attempts[0]["title_cer"] > 0
    assert reads.thumbnail  # the chosen cover's thumbnail was read too


def test_ocr_runs_with_the_network_unreachable(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network is unreachable in this test")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    ocr_engine.cache_clear()  # build the engine anew with the network blocked
    try:
        cover = make_cover(make_art("dark", (400, 640)), "Night", "Elie Wiesel", size="400x640px")
        assert check_cover(cover).title_reads
    finally:
        ocr_engine.cache_clear()


def test_cli_prints_both_figures(tmp_path, capsys, engine):
    src = tmp_path / "art.png"
    make_art("dark", (400, 640)).save(src)
    out = tmp_path / "cover.png"
    assert main(["cover", str(src), "--title", "The Salt Road", "--author", "Mara Ellison", "--size", "400x640px", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "read back at full size: title CER 0.000, word accuracy 100%" in printed
    assert "read back at 160 px wide: title CER" in printed
    assert out.is_file()


def test_cli_refuses_a_title_that_does_not_read_unless_accepted(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(legibility, "read_text", lambda image, **kwargs: [])  # as if the OCR read nothing
    src = tmp_path / "art.png"
    make_art("light", (400, 640)).save(src)
    out = tmp_path / "cover.png"
    args = ["cover", str(src), "--title", "The Salt Road", "--author", "Mara Ellison", "--size", "400x640px", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not read back" in err and "--accept-illegible" in err
    assert not out.exists()
    assert main([*args, "--accept-illegible"]) == 0
    assert "written anyway" in capsys.readouterr().out and out.is_file()


def test_the_model_files_are_the_bundled_ones(engine):
    folder = ocr._model_dir()
    assert (folder / ocr.DET_MODEL).is_file() and (folder / ocr.REC_MODEL).is_file()
    assert str(folder) in str(engine.cfg.Det.model_path) and str(folder) in str(engine.cfg.Rec.model_path)
