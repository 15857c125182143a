import json
import os
from pathlib import Path

import pytest
from PIL import Image

from coverforge.cli.main import main
from coverforge.data.fetch import FetchOptions
from coverforge.data.layout import load_records
from coverforge.data.prepare import PrepareOptions, prepare_catalogue, prepare_folder
from coverforge.errors import CoverforgeError
from data_builders import GOODREADS_HEADER, goodreads_row, save_cover, write_csv
from data_server import CoverServer

GENRES = ["Fantasy|Fiction", "Romance|Fiction", "Horror", "Mystery|Thriller"]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and ".downloads" not in p.parts}


@pytest.fixture
def catalogue(tmp_path):
    """20 good rows (<row>.jpg in images/images) plus one bad row of each kind."""
    images = tmp_path / "covers" / "images" / "images"
    rows = []
    for i in range(20):
        rows.append(goodreads_row(f"Good Book {i}", genres=GENRES[i % 4]))
        save_cover(images / f"{i}.jpg", 300 + 10 * (i % 3), 450 + 15 * (i % 3), seed=i)
    bad = {
        "missing cover": None,
        "truncated": "trunc",
        "grayscale": "gray",
        "too small": "small",
        "landscape": "land",
        "exact duplicate": "dup",
        "near duplicate": "near",
        "empty title": "notitle",
    }
    expected = {}
    for reason, kind in bad.items():
        row = len(rows)
        rows.append(goodreads_row("" if kind == "notitle" else f"Bad {reason}", genres="Horror"))
        expected[row] = reason
        p = images / f"{row}.jpg"
        if kind == "trunc":
            data = save_cover(p, seed=99).read_bytes()
            p.write_bytes(data[: len(data) // 3])
        elif kind == "gray":
            save_cover(p, seed=98, gray=True)
        elif kind == "small":
            save_cover(p, 100, 150, seed=97)
        elif kind == "land":
            save_cover(p, 450, 300, seed=96)
        elif kind == "dup":
            p.write_bytes((images / "3.jpg").read_bytes())
        elif kind == "near":
            Image.open(images / "5.jpg").resize((280, 420)).save(p, quality=80)
        elif kind == "notitle":
            save_cover(p, seed=95)
    csv_path = write_csv(tmp_path / "book_data.csv", GOODREADS_HEADER, rows)
    return csv_path, tmp_path / "covers", expected


def test_prepare_catalogue_keeps_every_good_row_and_reports_every_bad_one(catalogue, tmp_path):
    csv_path, covers, expected = catalogue
    out = tmp_path / "ds"
    report = prepare_catalogue(csv_path, PrepareOptions(out=out, images=covers, min_size=200, val_fraction=0.2))
    skipped = {s.source_row: s.reason for s in report.skipped}
    assert set(skipped) == set(expected)
    for row, reason in expected.items():
        assert skipped[row].startswith({"missing cover": "cover not found", "truncated": "unreadable",
                                        "landscape": "not portrait"}.get(reason, reason)), (row, skipped[row])
    assert "of row 3" in skipped[25] and "of row 5" in skipped[26]
    train, val = load_records(out, "train"), load_records(out, "validation")
    assert sorted(r["source_row"] for r in train + val) == list(range(20))
    assert report.train == len(train) == 16 and report.validation == len(val) == 4
    # stratified: 20% of each of the 4 genres (5 books each) is one validation book per genre
    assert sorted(r["primary_genre"] for r in val) == ["Fantasy", "Horror", "Mystery", "Romance"]
    r0 = next(r for r in train + val if r["source_row"] == 0)
    assert r0["text"].startswith('Book cover. Title: "Good Book 0". Author: Ann Author. Genres: Fantasy, Fiction.')
    assert r0["file_name"] == "000000.jpg" and Path(r0["path"]).is_file()
    assert (r0["width"], r0["height"]) == Image.open(r0["path"]).size
    assert Path(r0["path"]).read_bytes() == (covers / "images" / "images" / "0.jpg").read_bytes()  # copied, not re-encoded
    assert r0["isbn"] == "9780439023480" and r0["pages"] == 374
    rep = json.loads((out / "report.json").read_text())
    assert rep["kept"] == 20 and rep["skipped_count"] == len(expected)
    md = (out / "report.md").read_text()
    assert all(f"| {row} |" in md for row in expected)


def test_rerun_is_idempotent_and_seed_changes_split(catalogue, tmp_path):
    csv_path, covers, _ = catalogue
    out = tmp_path / "ds"
    opts = dict(out=out, images=covers, min_size=200, max_side=400, workers=2, val_fraction=0.2)
    prepare_catalogue(csv_path, PrepareOptions(**opts))
    first = _tree(out)
    prepare_catalogue(csv_path, PrepareOptions(**opts))
    assert _tree(out) == first
    assert all(max(Image.open(p).size) <= 400 for p in out.glob("*/*.jpg"))
    prepare_catalogue(csv_path, PrepareOptions(**opts, seed=1))
    assert _tree(out)["validation/metadata.jsonl"] != first["validation/metadata.jsonl"]


def test_download_mode_end_to_end(tmp_path):
    files = {f"/c{i}.jpg": save_cover(tmp_path / "src" / f"{i}.jpg", seed=i).read_bytes() for i in range(6)}
    with CoverServer(files) as s:
        rows = [goodreads_row(f"B{i}", url=f"{s.url}/c{i}.jpg") for i in range(6)]
        rows += [goodreads_row("Broken", url=f"{s.url}/html/x.jpg"), goodreads_row("NoUrl", url="")]
        csv_path = write_csv(tmp_path / "cat.csv", GOODREADS_HEADER, rows)
        opts = PrepareOptions(out=tmp_path / "ds", download=True, min_size=200,
                              fetch=FetchOptions(timeout=2, retries=0, workers=3))
        report = prepare_catalogue(csv_path, opts)
        prepare_catalogue(csv_path, opts)  # resumable: nothing fetched twice
        hits = dict(s.hits)
    assert report.kept == 6
    assert {s.source_row: s.reason.split(":")[0] for s in report.skipped} == {6: "download failed", 7: "no image_url"}
    assert all(hits[f"/c{i}.jpg"] == 1 for i in range(6))


def test_prepare_folder_with_all_caption_sources(tmp_path):
    src = tmp_path / "folder"
    for i in range(4):
        save_cover(src / f"img{i}.png", seed=i)
    save_cover(src / "sub" / "deep.jpg", seed=9)
    (src / "img0.txt").write_text("a red cover with a dragon\n")
    (src / "image_captions.json").write_text(json.dumps({"img1.png": "a blue cover", "img0.png": "json wins over txt"}))
    (src / "metadata.jsonl").write_text(
        json.dumps({"file_name": "img2.png", "text": "from metadata", "title": "T2", "genres": ["Poetry"]}) + "\n"
        + json.dumps({"file_name": "../escape.png", "text": "nope"}) + "\n"
    )
    out = tmp_path / "ds"
    report = prepare_folder(src, PrepareOptions(out=out, min_size=200, val_fraction=0.0))
    rows = {r["source_row"]: r for r in json.loads("[" + ",".join((out / "train" / "metadata.jsonl").read_text().split("\n")[:-1]) + "]")}
    texts = sorted(r["text"] for r in rows.values())
    assert texts == ["", "", "a blue cover", "from metadata", "json wins over txt"]
    assert report.uncaptioned == 2 and len(report.skipped) == 1 and "not found" in report.skipped[0].reason
    assert next(r for r in rows.values() if r["text"] == "from metadata")["primary_genre"] == "Poetry"
    with pytest.raises(CoverforgeError, match="missing text"):
        load_records(out)  # uncaptioned rows must be captioned before training


def test_path_escapes_are_rejected(tmp_path):
    split = tmp_path / "ds" / "train"
    save_cover(split / "ok.jpg")
    save_cover(tmp_path / "outside.jpg")
    os.symlink(tmp_path / "outside.jpg", split / "link.jpg")
    cases = {"../outside.jpg": "leaves the split", str(tmp_path / "outside.jpg"): "absolute",
             "link.jpg": "outside", "gone.jpg": "does not exist"}
    for name, message in cases.items():
        (split / "metadata.jsonl").write_text(json.dumps({"file_name": "ok.jpg", "text": "a"}) + "\n" + json.dumps({"file_name": name, "text": "b"}) + "\n")
        with pytest.raises(CoverforgeError, match=message) as e:
            load_records(tmp_path / "ds")
        assert "metadata.jsonl:2" in str(e.value)
    (split / "metadata.jsonl").write_text(json.dumps({"file_name": "ok.jpg"}) + "\n")
    with pytest.raises(CoverforgeError, match="metadata.jsonl:1: missing text"):
        load_records(tmp_path / "ds")


def test_cli_prepare(catalogue, tmp_path, capsys):
    csv_path, covers, expected = catalogue
    template = tmp_path / "t.txt"
    template.write_text("{title} by {author}")
    rc = main(["prepare", str(csv_path), "--out", str(tmp_path / "ds"), "--images", str(covers),
               "--min-size", "200", "--template", str(template), "--seed", "3"])
    assert rc == 0 and "kept 20" in capsys.readouterr().out
    assert {r["text"] for r in load_records(tmp_path / "ds")} <= {f"Good Book {i} by Ann Author" for i in range(20)}
    assert main(["prepare", str(csv_path), "--out", str(tmp_path / "x"), "--columns", "title=Nope"]) == 2
    assert "Nope" in capsys.readouterr().err
