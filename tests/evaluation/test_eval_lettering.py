"""`coverforge evaluate --lettering`: title read-back of typeset covers, native lettering and stray
text of raw art, per genre, in metrics.json, report.md and report.html."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from coverforge.cli.main import main
from coverforge.covers.fonts import load_font
from coverforge.covers.ocr import ocr_engine
from coverforge.evaluation.evaluate import evaluate_images
from coverforge.evaluation.lettering import LetteringCheck, summarise, unread_titles
from coverforge.evaluation.report import write_report

SIZE = "400x640px"


@pytest.fixture(scope="session")
def engine():
    return ocr_engine()


def art(seed: int, lettered: str = "") -> Image.Image:
    """Smooth colour art; with `lettered`, that text painted large across it, as a model that
    letters its own covers would."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:480, 0:300]
    base = rng.uniform(40, 200, 3)
    pixels = base + 40 * np.sin(xx / 60.0 + seed)[..., None] + 30 * np.cos(yy / 90.0)[..., None]
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if lettered:
        ImageDraw.Draw(image).text((150, 240), lettered, font=load_font("sans", True, 34, lettered), fill=(255, 255, 255), anchor="mm")
    return image


def test_one_image_gives_every_figure(engine):
    check = LetteringCheck(SIZE)
    plain = check(art(0), {"title": "The Salt Road", "authors": ["Mara Ellison"], "primary_genre": "fantasy"})
    assert plain["title_cer"] == 0.0 and plain["title_word_accuracy"] == 1.0
    assert plain["native_title_cer"] == 1.0 and plain["native_title_word_accuracy"] == 0.0  # the art letters nothing
    assert plain["stray_text_rate"] == 0.0 and plain["stray_text_area"] == 0.0
    assert {"title_cer_thumbnail", "title_word_accuracy_thumbnail"} <= set(plain)
    native = check(art(1, "Salt Road"), {"title": "Salt Road", "authors": [], "primary_genre": "fantasy"})
    assert native["native_title_cer"] == 0.0 and native["native_title_word_accuracy"] == 1.0
    assert native["stray_text_rate"] == 1.0  # lettering in raw art counts as text there, wanted or not
    assert native["title_cer"] == 0.0  # typeset over it, the title still reads
    untitled = check(art(2), {"primary_genre": "fantasy"})
    assert set(untitled) == {"stray_text_rate", "stray_text_area"}


def test_summary_and_unread_list():
    rows = [{"title_cer": 0.0, "title_word_accuracy": 1.0, "stray_text_rate": 0.0, "title": "A", "title_read": "A"},
            {"title_cer": 0.5, "title_word_accuracy": 0.5, "stray_text_rate": 1.0, "title": "Big Sea", "title_read": "Big"},
            {"stray_text_rate": 1.0}]
    figures = summarise(rows)
    assert figures["title_cer"] == (0.25, 2) and figures["stray_text_rate"] == (pytest.approx(2 / 3), 3)
    unread = unread_titles(rows, [{"file_name": "a.png"}, {"file_name": "b.png", "primary_genre": "sea"}, {}])
    assert unread == [{"file": "b.png", "genre": "sea", "title": "Big Sea", "read": "Big", "cer": 0.5}]


def test_evaluate_images_reports_lettering_per_genre(engine, tmp_path):
    items = [(art(0), {"title": "The Salt Road", "primary_genre": "fantasy"}),
             (art(1, "Night Train"), {"title": "Night Train", "primary_genre": "thriller"}),
             (art(2), {"title": "Dune", "primary_genre": "thriller"})]
    result = evaluate_images(iter(items), lettering=LetteringCheck(SIZE))
    overall = result["overall"]
    assert overall["title_cer"]["value"] == 0.0 and overall["title_cer"]["n"] == 3
    assert overall["stray_text_rate"]["value"] == pytest.approx(1 / 3)
    assert overall["native_title_cer"]["n"] == 3 and "rapidocr" in overall["native_title_cer"]["extractor"]
    assert result["per_genre"]["thriller"]["stray_text_rate"]["value"] == 0.5
    assert result["per_genre"]["thriller"]["native_title_word_accuracy"]["value"] == 0.5
    assert result["unread_titles"] == []
    result["unread_titles"] = [{"file": "x.png", "genre": "thriller", "title": "Dune", "read": "Dun", "cer": 0.25}]
    write_report(result, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "title_word_accuracy" in md and "stray_text_rate" in md and "native_title_cer" in md
    assert "Typeset titles that did not read back" in md and "| x.png | thriller | Dune | Dun |" in md
    assert "stray_text_rate" in (tmp_path / "report.html").read_text()


def test_evaluate_cli_with_lettering(engine, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rows = []
    for i, (title, genre) in enumerate([("The Salt Road", "fantasy"), ("Night Train", "thriller")]):
        art(i).save(folder / f"{i}.png")
        rows.append({"file_name": f"{i}.png", "title": title, "authors": ["Mara Ellison"], "primary_genre": genre})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "report"
    assert main(["evaluate", str(folder), "--extractor", "none", "--lettering", "--lettering-size", SIZE, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for genre in ("fantasy", "thriller"):
        assert metrics["per_genre"][genre]["title_cer"]["value"] == 0.0
        assert metrics["per_genre"][genre]["stray_text_rate"]["value"] == 0.0
    assert "title_cer" in Path(out / "report.html").read_text()


def test_bad_lettering_size_fails_before_any_image(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path), "--extractor", "none", "--lettering", "--lettering-size", "huge", "--out", str(tmp_path / "r")]) == 2
    assert "huge" in capsys.readouterr().err
