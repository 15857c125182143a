"""A font chosen for title and author (`--font`, the studio's font picker) instead of the layout's faces."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from coverforge.cli.main import main
from coverforge.covers.compose import make_cover, typefaces
from coverforge.covers.fonts import ASSET_DIR, bundled_fonts, get_font
from coverforge.covers.layouts import LAYOUTS
from coverforge.covers.print_wrap import make_print_wrap
from coverforge.errors import CoverforgeError

ART = Image.new("RGB", (64, 96), (40, 60, 120))


def test_bundled_fonts_are_the_shipped_files_and_found_by_name_or_label():
    fonts = bundled_fonts()
    assert [f.name for f in fonts] == ["source-serif", "source-serif-bold", "source-sans", "source-sans-bold"]
    assert all((ASSET_DIR / f.file).is_file() for f in fonts)
    assert get_font("Source Sans Bold") == get_font("source-sans-bold") == fonts[3]
    with pytest.raises(CoverforgeError, match="font 'Comic Sans' is not a bundled font: use one of source-serif, "):
        get_font("Comic Sans")


def test_a_chosen_font_sets_title_and_author_and_changes_the_pixels():
    # 'classic' sets the title in Source Serif Bold and the author in Source Serif.
    default = make_cover(ART, "The Salt Road", "Mara Ellison", size="400x640px", layout="classic")
    chosen = make_cover(ART, "The Salt Road", "Mara Ellison", size="400x640px", layout="classic", font="source-sans")
    assert default.font == "" and chosen.font == "source-sans" and chosen.layout == "classic"
    assert typefaces(default.boxes) == {"title": "Source Serif Pro Bold", "author": "Source Serif Pro Regular"}
    assert typefaces(chosen.boxes) == {"title": "Source Sans Pro Regular", "author": "Source Sans Pro Regular"}
    assert np.abs(np.asarray(default.image, np.int16) - np.asarray(chosen.image, np.int16)).sum() > 0
    assert chosen.contrast >= 4.5


def test_the_subtitle_takes_the_family_at_its_own_weight():
    layout = LAYOUTS["band"].with_face("serif", True)
    assert (layout.title.family, layout.title.bold, layout.author.bold) == ("serif", True, True)
    assert (layout.subtitle.family, layout.subtitle.bold) == ("serif", False)
    assert layout.groups == LAYOUTS["band"].groups and layout.title.max_size == LAYOUTS["band"].title.max_size


def test_a_print_wrap_sets_front_and_spine_in_the_chosen_font():
    wrap = make_print_wrap(ART, "The Salt Road", "Mara Ellison", trim="5x8in", pages=300, font="source-serif-bold")
    faces = {(line.role, " ".join(line.font.getname())) for line in wrap.boxes}
    assert faces == {("title", "Source Serif Pro Bold"), ("author", "Source Serif Pro Bold"), ("spine", "Source Serif Pro Bold")}
    assert wrap.font == "source-serif-bold"
    plain = make_print_wrap(ART, "The Salt Road", "Mara Ellison", trim="5x8in", pages=300)
    assert {" ".join(l.font.getname()) for l in plain.boxes if l.role == "spine"} == {"Source Sans Pro Bold", "Source Sans Pro Regular"}


def test_cover_cli_takes_font_and_refuses_an_unknown_one_in_one_line(tmp_path, capsys):
    art = tmp_path / "art.png"
    ART.save(art)
    code = main(["cover", str(art), "--title", "Night Ferry", "--author", "Jon Abel", "--size", "400x640px",
                 "--font", "Source Sans Bold", "--out", str(tmp_path / "c.png")])
    out, _ = capsys.readouterr()
    assert code == 0 and "font source-sans-bold" in out
    code = main(["cover", str(art), "--title", "T", "--author", "A", "--font", "papyrus", "--out", str(tmp_path / "d.png")])
    _, err = capsys.readouterr()
    lines = [l for l in err.splitlines() if l.strip()]
    assert code == 2 and len(lines) == 1 and "--font: font 'papyrus' is not a bundled font" in lines[0]
    assert not (tmp_path / "d.png").exists()
