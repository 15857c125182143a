"""Covers the model letters itself (generate --covers --lettering model|both): the OCR judges them."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageDraw

from coverforge.cli.main import main
from coverforge.covers.fonts import load_font
from coverforge.covers.model_lettering import lettering_prompt, make_lettered_candidate

BOOK = {"title": "The Salt Road", "authors": ["Mara Quill"], "genres": ["fantasy"]}
SIZE = "512x768px"  # the art's own size: the OCR reads it once, not resized to 1600x2560


def lettered_art(lines: list[tuple[str, int, int]], size=(512, 768)) -> Image.Image:
    """Art with words drawn as a model that letters well would draw them: (text, y, font size)."""
    art = Image.new("RGB", size, (30, 50, 90))
    draw = ImageDraw.Draw(art)
    for text, y, px in lines:
        draw.text((40, y), text, font=load_font("serif", True, px, text), fill=(245, 235, 200))
    return art


def test_the_prompt_asks_for_the_title_and_author_quoted():
    prompt = lettering_prompt("Book cover. A caravan crossing salt flats.", BOOK)
    assert prompt.startswith("Book cover. A caravan crossing salt flats. ")
    assert '"The Salt Road"' in prompt and '"Mara Quill"' in prompt
    assert "author" not in lettering_prompt("x", {"title": "Alone", "authors": []})


def test_lettering_that_reads_wins_and_missing_lettering_reads_nothing():
    good = make_lettered_candidate(lettered_art([("The Salt Road", 80, 64), ("Mara Quill", 640, 40)]), BOOK, SIZE, 0, "a.png")
    assert good.legibility.title_reads and good.legibility.full["author"].reads
    assert good.scores["legibility"] > 0.5
    assert good.cover.image.size == (512, 768) and good.cover.layout == "model-lettered"
    blank = make_lettered_candidate(lettered_art([]), BOOK, SIZE, 1, "b.png")
    assert not blank.legibility.title_reads and blank.scores["legibility"] == 0.0
    assert good.rank() < blank.rank()


def test_words_that_are_not_the_book_count_as_stray_text():
    art = lettered_art([("The Salt Road", 80, 64), ("Mara Quill", 640, 40), ("GARBLED WORDS", 360, 48)])
    candidate = make_lettered_candidate(art, BOOK, SIZE, 0, "a.png")
    assert candidate.legibility.title_reads
    assert candidate.stray.found and any("GARBLED" in t.upper() for t in candidate.stray.to_dict()["texts"])
    clean = make_lettered_candidate(lettered_art([("The Salt Road", 80, 64), ("Mara Quill", 640, 40)]), BOOK, SIZE, 0, "a.png")
    assert not clean.stray.found


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    from coverforge.models.tiny_flow import write_tiny_flow_model

    return write_tiny_flow_model("qwen-image", tmp_path_factory.mktemp("qwen") / "model")


def test_both_letterings_are_drawn_and_compared(tiny_qwen, tmp_path):
    out = tmp_path / "out"
    code = main(["generate", "--model", str(tiny_qwen), "--prompt", "A sea at night", "--title", "Night Sea", "--author", "Ann Lee",
                 "--covers", "--cover-size", "320x480px", "--lettering", "both", "--width", "32", "--height", "48", "--steps", "2", "--out", str(out)])
    assert code == 0
    record = json.loads((out / "covers" / "lettering-base.json").read_text())
    assert set(record["summary"]) == {"typeset", "model"} and record["summary"]["typeset"]["books"] == 1
    book = record["books"][0]
    assert (out / "covers" / book["typeset"]["cover"]).is_file() and (out / "covers" / book["model"]["cover"]).is_file()
    # The lettered art was drawn from the prompt that asks for the lettering.
    params = json.loads(Image.open(out / "00000-base-lettered-seed0.png").text["coverforge"])
    assert '"Night Sea"' in params["prompt"] and '"Ann Lee"' in params["prompt"]
    # The random tiny model letters nothing; the typeset cover reads.
    assert book["reads_better"] == "typeset" and book["typeset"]["title_reads"] and not book["model"]["title_reads"]


def test_lettering_without_covers_is_one_line(tmp_path, capsys):
    code = main(["generate", "--model", str(tmp_path), "--prompt", "x", "--lettering", "model", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--covers" in err
