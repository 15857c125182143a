"""`generate --covers --candidates N`: every candidate typeset and scored, the best kept."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from coverforge.cli.main import main
from coverforge.covers.candidates import Candidate, choose, legibility_score
from coverforge.covers.compose import make_cover
from coverforge.covers.legibility import Legibility
from coverforge.covers.ocr import TextRegion
from coverforge.covers.readback import compare
from coverforge.covers.stray_text import StrayText
from test_covers_typography import make_art


def _candidate(seed: int, title_read: str, stray_boxes: int, art_kind: str) -> Candidate:
    """A real small cover with stated read-backs and stray text (no OCR needed to test the order)."""
    cover = make_cover(make_art(art_kind, (200, 320)), "The Salt Road", "Mara Ellison", size="200x320px")
    reads = {"title": compare("The Salt Road", title_read), "author": compare("Mara Ellison", "Mara Ellison")}
    regions = [TextRegion((0, 40 * k, 100, 40 * k + 30), "Xqelt", 0.9) for k in range(stray_boxes)]
    return Candidate(seed, f"{seed}.png", Legibility(reads, {"title": reads["title"]}), StrayText(regions, (512, 768)), cover)


def test_order_is_legibility_then_stray_text_then_contrast():
    misread = _candidate(0, "The Sa1t Road", 0, "dark")
    clean = _candidate(1, "The Salt Road", 0, "busy")
    stray = _candidate(2, "The Salt Road", 2, "dark")
    assert legibility_score(misread.legibility) < legibility_score(clean.legibility) == 1.0
    assert choose([misread, stray, clean]) == 2  # reads, and no stray text
    assert choose([misread, stray]) == 1  # reading beats clean art
    calm = _candidate(3, "The Salt Road", 0, "dark")
    assert calm.cover.contrast > clean.cover.contrast
    assert choose([clean, calm]) == 1  # then the higher contrast
    assert choose([clean, clean]) == 0  # equals: the first (lowest seed)


@pytest.mark.slow  # a model load, two generations and six OCR passes: ~25 s on 2 busy cores
def test_generate_keeps_the_best_candidate_and_writes_every_score(tmp_path, tiny_models):
    out = tmp_path / "gen"
    code = main(["generate", "--model", str(tiny_models["sd15"]), "--prompt", "Book cover. Title: \"The Salt Road\".",
                 "--steps", "2", "--width", "64", "--height", "96", "--covers", "--candidates", "2", "--seed", "5",
                 "--title", "The Salt Road", "--author", "Mara Ellison", "--cover-size", "320x512px", "--out", str(out)])
    assert code == 0
    arts = sorted(p.name for p in out.glob("00000-base-seed*.png"))
    assert arts == ["00000-base-seed5.png", "00000-base-seed6.png"]  # candidate k of book 0: seed 5 + k
    record = json.loads((out / "covers" / "00000-base.json").read_text())
    assert record["title"] == "The Salt Road" and len(record["candidates"]) == 2
    assert [c["art"] for c in record["candidates"]] == arts
    for c in record["candidates"]:
        assert set(c["scores"]) == {"legibility", "stray_text_area", "contrast"}
        assert set(c["legibility"]["full"]) == {"title", "author"} and "title" in c["legibility"]["thumbnail"]
        assert c["stray_text"]["found"] in (True, False)
    ranks = [(-c["scores"]["legibility"], c["scores"]["stray_text_area"], -c["scores"]["contrast"]) for c in record["candidates"]]
    assert record["chosen"] == ranks.index(min(ranks))
    assert Image.open(out / "covers" / "00000-base.png").size == (320, 512)


def test_candidates_without_covers_is_one_line(tmp_path, tiny_models, capsys):
    code = main(["generate", "--model", str(tiny_models["sd15"]), "--prompt", "x", "--candidates", "3", "--out", str(tmp_path / "g")])
    assert code == 2 and "--covers" in capsys.readouterr().err
