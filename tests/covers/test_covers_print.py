"""Print wrap geometry, its PDF page size, art cropping and the proof sheet."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from coverforge.cli.main import main
from coverforge.covers.compose import fit_art, make_cover
from coverforge.covers.contrast import MIN_CONTRAST
from coverforge.covers.print_wrap import make_print_wrap, wrap_geometry
from coverforge.covers.sizes import spine_width_in


def art(size=(600, 900), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    ramp = np.linspace(0, 255, w)[None, :, None].repeat(h, 0).repeat(3, 2)
    return Image.fromarray(np.clip(ramp + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8))


def media_box(pdf: bytes) -> list[float]:
    boxes = re.findall(rb"/MediaBox\s*\[\s*([^\]]*)\]", pdf)
    assert len(boxes) == 1
    return [float(v) for v in boxes[0].split()]


@pytest.mark.parametrize("trim,pages,paper", [("6x9in", 320, "white"), ("5.5x8.5in", 120, "cream")])
def test_wrap_pdf_page_is_the_computed_physical_size(tmp_path, trim, pages, paper):
    tw, th = (float(v) for v in trim[:-2].split("x"))
    expected_w = (2 * tw + spine_width_in(pages, paper) + 2 * 0.125) * 72
    expected_h = (th + 2 * 0.125) * 72
    result = make_print_wrap(art(), "The Name of the Wind", "Patrick Rothfuss", "Day One", trim, pages=pages, paper=paper, back_text="A blurb.\n\nSecond paragraph of the blurb.")
    path = result.save_pdf(tmp_path / "wrap.pdf")
    x0, y0, x1, y1 = media_box(path.read_bytes())
    assert (x0, y0) == (0, 0)
    assert abs(x1 - expected_w) < 0.01 and abs(y1 - expected_h) < 0.01
    assert result.image.size == (round(expected_w / 72 * 300), round(expected_h / 72 * 300))
    assert result.spine_width_in == pytest.approx(spine_width_in(pages, paper))
    assert result.contrast >= MIN_CONTRAST
    roles = {line.role for line in result.boxes}
    assert {"title", "author", "back", "spine"} <= roles


def test_wrap_panels_tile_the_trim_and_text_stays_in_its_panel():
    size, panels, spine = wrap_geometry("6x9in", 300, "white")
    back, sp, front = panels["back"], panels["spine"], panels["front"]
    assert back[2] == sp[0] and sp[2] == front[0] and (back[0], front[2]) == (size.trim[0], size.trim[2])
    assert abs((sp[2] - sp[0]) - spine * 300) <= 1
    result = make_print_wrap(art(), "Dune", "Frank Herbert", pages=300)
    for line in result.boxes:
        panel = {"back": back, "spine": sp}.get(line.role, front)
        assert panel[0] <= line.box[0] and line.box[2] <= panel[2], (line.role, line.text)


def test_thin_book_has_no_spine_text():
    result = make_print_wrap(art(), "Night", "Elie Wiesel", pages=40)
    assert "spine" not in {line.role for line in result.boxes}


def test_art_is_centre_cropped_never_stretched():
    wide = art((1200, 600))
    image, crop = fit_art(wide, (400, 640))
    assert image.size == (400, 640)
    x0, y0, x1, y1 = crop.box
    assert (x1 - x0) / (y1 - y0) == pytest.approx(400 / 640)
    assert (x0 + x1) / 2 == pytest.approx(600) and (y0, y1) == (0, 600)
    assert crop.scale == pytest.approx(640 / 600)


def test_proof_shows_the_crop_beside_the_cover():
    result = make_cover(art((900, 900)), "Gone Girl", "Gillian Flynn", size="6x9in")
    proof = result.proof()
    assert proof.height == 1200 and proof.width > 1200 * 6.25 / 9.25 + 1000
    assert result.crop.kept_fraction == pytest.approx((900 * 6.25 / 9.25) / 900, rel=1e-3)


def test_cli_writes_png_pdf_and_wrap(tmp_path, capsys):
    src = tmp_path / "art.png"
    art().save(src)
    out = tmp_path / "cover.png"
    assert main(["cover", str(src), "--title", "Cien años de soledad", "--author", "G. García Márquez", "--out", str(out), "--size", "400x640px", "--genre", "romance", "--proof", str(tmp_path / "proof.png")]) == 0
    assert Image.open(out).size == (400, 640) and (tmp_path / "proof.png").is_file()
    pdf = tmp_path / "front.pdf"
    assert main(["cover", str(src), "--title", "Dune", "--author", "Frank Herbert", "--out", str(pdf), "--size", "6x9in"]) == 0
    assert media_box(pdf.read_bytes())[2:] == pytest.approx([6.25 * 72, 9.25 * 72], abs=0.01)
    blurb = tmp_path / "back.txt"
    blurb.write_text("A desert planet.\n\nA spice.", encoding="utf-8")
    wrap = tmp_path / "wrap.pdf"
    assert main(["cover", str(src), "--title", "Dune", "--author", "Frank Herbert", "--out", str(wrap), "--size", "4x6in", "--pages", "400", "--paper", "cream", "--back-text", str(blurb)]) == 0
    assert media_box(wrap.read_bytes())[2] == pytest.approx((8.25 + 400 * 0.0025) * 72, abs=0.01)


def test_cli_bad_input_exits_2(tmp_path, capsys):
    src = tmp_path / "art.png"
    art().save(src)
    out = tmp_path / "cover.png"
    assert main(["cover", str(src), "--title", "T", "--author", "A", "--out", str(out), "--size", "huge"]) == 2
    assert "'huge'" in capsys.readouterr().err and not out.exists()
    assert main(["cover", str(src), "--title", "T", "--author", "A", "--out", str(out), "--layout", "zigzag"]) == 2
    assert main(["cover", str(tmp_path / "missing.png"), "--title", "T", "--author", "A", "--out", str(out)]) == 2
    assert main(["cover", str(src), "--title", "T", "--author", "A", "--out", str(tmp_path / "w.png"), "--pages", "200"]) == 2
