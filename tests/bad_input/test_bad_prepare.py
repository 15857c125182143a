"""`prepare` with hostile inputs: every bad row or file is a report line, every bad option one line,
no good row is lost, and prepare never reads what it wrote."""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bad_input_kit import cover
from coverforge.data.fetch import FetchResult
from bad_input_kit import cli, one_torch_thread, tiny_clip_dir  # noqa: F401 - fixtures


def folder_of_covers(folder: Path, n: int = 4, captions: dict[int, bytes] | None = None) -> Path:
    """n covers with UTF-8 sidecar captions (or the given raw caption bytes)."""
    for i in range(n):
        cover(folder / f"c{i}.jpg", seed=i)
        data = (captions or {}).get(i, f"A painted cover number {i}".encode())
        (folder / f"c{i}.txt").write_bytes(data)
    return folder


def rows(ds: Path) -> list[dict]:
    out = []
    for split in ("train", "validation"):
        meta = ds / split / "metadata.jsonl"
        if meta.is_file():
            out += [json.loads(line) for line in meta.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def report(ds: Path) -> dict:
    return json.loads((ds / "report.json").read_text(encoding="utf-8"))


def write_catalogue(path: Path, header: list[str], lines: list[list[str]], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(lines)
    return path


# --- prepare never imports its own output ------------------------------------------------------


def test_output_inside_the_input_folder_is_never_read_back(tmp_path, cli):
    src = folder_of_covers(tmp_path / "covers")
    out = src / "ds"
    assert cli("prepare", "--from-folder", src, "--out", out, "--val-fraction", "0")[0] == 0
    first = rows(out)
    assert cli("prepare", "--from-folder", src, "--out", out, "--val-fraction", "0")[0] == 0
    second = rows(out)
    assert len(second) == len(first) == 4
    assert sorted(r["text"] for r in second) == sorted(r["text"] for r in first) and all(r["text"] for r in second)
    assert report(out)["rows"] == 4


def test_output_of_an_earlier_prepare_elsewhere_in_the_folder_is_not_input(tmp_path, cli):
    src = folder_of_covers(tmp_path / "covers")
    assert cli("prepare", "--from-folder", src, "--out", src / "old", "--val-fraction", "0")[0] == 0
    assert cli("prepare", "--from-folder", src, "--out", tmp_path / "new", "--val-fraction", "0")[0] == 0
    assert len(rows(tmp_path / "new")) == 4
    assert report(tmp_path / "new")["rows"] == 4  # the old output's copies were not even looked at


# --- a full disk is an error for the whole run -------------------------------------------------


def test_full_disk_stops_the_run_and_says_how_much_space(tmp_path, cli, monkeypatch):
    src = folder_of_covers(tmp_path / "covers")

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", no_space)
    monkeypatch.setattr(Image.Image, "save", no_space)
    line = cli.fails("prepare", "--from-folder", src, "--out", tmp_path / "ds", mentions=("space",))
    assert "MB" in line or "GB" in line or "KB" in line


# --- text that is not UTF-8 --------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16", "utf-8-sig", "utf-16-le-no-bom"])
def test_sidecar_captions_in_any_common_encoding_are_read_right(tmp_path, cli, encoding):
    text = "Café noir, naïve — a rosé cover"
    data = text.encode("utf-16-le") if encoding == "utf-16-le-no-bom" else text.encode(encoding)
    src = folder_of_covers(tmp_path / "covers", captions={0: data})
    assert cli("prepare", "--from-folder", src, "--out", tmp_path / "ds", "--val-fraction", "0")[0] == 0
    texts = {r["text"] for r in rows(tmp_path / "ds")}
    assert text in texts and not any("\ufffd" in t or "\ufeff" in t for t in texts)


def test_metadata_jsonl_in_latin1_is_read_right(tmp_path, cli):
    src = tmp_path / "covers"
    for i in range(3):
        cover(src / f"c{i}.jpg", seed=i)
    lines = [json.dumps({"file_name": f"c{i}.jpg", "text": f"Crème brûlée {i}"}, ensure_ascii=False) for i in range(3)]
    (src / "metadata.jsonl").write_bytes("\n".join(lines).encode("cp1252"))
    assert cli("prepare", "--from-folder", src, "--out", tmp_path / "ds", "--val-fraction", "0")[0] == 0
    assert sorted(r["text"] for r in rows(tmp_path / "ds")) == [f"Crème brûlée {i}" for i in range(3)]


def test_captions_json_with_a_bom_is_read(tmp_path, cli):
    src = tmp_path / "covers"
    for i in range(3):
        cover(src / f"c{i}.jpg", seed=i)
    (src / "image_captions.json").write_bytes(json.dumps({f"c{i}.jpg": f"caption {i}" for i in range(3)}).encode("utf-8-sig"))
    assert cli("prepare", "--from-folder", src, "--out", tmp_path / "ds", "--val-fraction", "0")[0] == 0
    assert sorted(r["text"] for r in rows(tmp_path / "ds")) == [f"caption {i}" for i in range(3)]


def test_catalogue_in_utf16_keeps_every_column(tmp_path, cli):
    images = tmp_path / "cat" / "images"
    for i in range(3):
        cover(images / f"{i}.jpg", seed=i)
    csv_path = write_catalogue(tmp_path / "cat" / "books.csv", ["title", "authors", "genres"],
                               [[f"Book {i}", "Zoë Ångström", "Fantasy"] for i in range(3)], encoding="utf-16")
    assert cli("prepare", csv_path, "--out", tmp_path / "ds", "--images", images, "--val-fraction", "0")[0] == 0
    got = rows(tmp_path / "ds")
    assert len(got) == 3 and all(r["authors"] == ["Zoë Ångström"] for r in got)


def test_catalogue_bytes_without_a_character_never_become_replacement_marks(tmp_path, cli):
    images = tmp_path / "cat" / "images"
    for i in range(3):
        cover(images / f"{i}.jpg", seed=i)
    path = tmp_path / "cat" / "books.csv"
    path.write_bytes(b"title,authors\nCaf\xe9 One,Ann\nOdd \x81 Two,Bo\nThree,Cy\n")  # 0x81: no character in Windows-1252
    assert cli("prepare", path, "--out", tmp_path / "ds", "--images", images, "--val-fraction", "0")[0] == 0
    titles = sorted(r["title"] for r in rows(tmp_path / "ds"))
    assert "Café One" in titles and len(titles) == 3 and not any("\ufffd" in t for t in titles)


def test_template_file_in_latin1_gives_the_right_prompt(tmp_path, cli):
    images = tmp_path / "cat" / "images"
    for i in range(2):
        cover(images / f"{i}.jpg", seed=i)
    csv_path = write_catalogue(tmp_path / "cat" / "books.csv", ["title"], [["Alpha"], ["Beta"]])
    template = tmp_path / "t.txt"
    template.write_bytes("Couverture illustrée: {title}".encode("cp1252"))
    assert cli("prepare", csv_path, "--out", tmp_path / "ds", "--images", images, "--template", template, "--val-fraction", "0")[0] == 0
    assert sorted(r["text"] for r in rows(tmp_path / "ds")) == ["Couverture illustrée: Alpha", "Couverture illustrée: Beta"]


@pytest.mark.parametrize("template", ["{title[100]}", "{title.upper}", "{authors[0][5]}", "{title!r}", "{title:>9999999999}"])
def test_template_fields_that_index_or_format_are_one_line(tmp_path, cli, template):
    images = tmp_path / "cat" / "images"
    cover(images / "0.jpg")
    csv_path = write_catalogue(tmp_path / "cat" / "books.csv", ["title"], [["Alpha"]])
    (tmp_path / "t.txt").write_text(template, encoding="utf-8")
    cli.fails("prepare", csv_path, "--out", tmp_path / "ds", "--images", images, "--template", tmp_path / "t.txt", mentions=("template",))


# --- images ------------------------------------------------------------------------------------


def test_jpeg_with_corrupt_middle_bytes_is_reported_and_the_rest_kept(tmp_path, cli):
    src = folder_of_covers(tmp_path / "covers", n=4)
    bad = src / "c1.jpg"
    data = bytearray(bad.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes()
    bad.write_bytes(bytes(data))
    assert cli("prepare", "--from-folder", src, "--out", tmp_path / "ds", "--val-fraction", "0")[0] == 0
    assert len(rows(tmp_path / "ds")) == 3
    skipped = report(tmp_path / "ds")["skipped"]
    assert len(skipped) == 1 and "c1.jpg" in json.dumps(skipped[0]) and "corrupt" in skipped[0]["reason"].lower()


def test_every_file_not_imported_is_in_the_report_with_its_reason(tmp_path, cli):
    src = folder_of_covers(tmp_path / "covers", n=3)
    cover(src / "modern.avif", seed=7, format="AVIF")
    (src / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200))
    (src / "notes.pdf").write_bytes(b"%PDF-1.4\n%...")
    assert cli("prepare", "--from-folder", src, "--out", tmp_path / "ds", "--val-fraction", "0")[0] == 0
    assert len(rows(tmp_path / "ds")) == 4  # AVIF decodes here: it is imported, re-encoded
    skipped = {s["ident"]: s["reason"] for s in report(tmp_path / "ds")["skipped"]}
    assert set(skipped) == {"phone.heic", "notes.pdf"}, skipped
    assert "HEIC" in skipped["phone.heic"] and "convert" in skipped["phone.heic"]


def test_hidden_covers_are_reported_not_silently_dropped(tmp_path, cli):
    src = folder_of_covers(tmp_path / "covers", n=3)
    cover(src / ".draft.png", seed=8)
    (src / ".old").mkdir()
    cover(src / ".old" / "earlier.png", seed=9)
    (src / ".DS_Store").write_bytes(bytes(64))  # not a cover: no line for it
    (src / "._c0.png").write_bytes(bytes(64))  # a macOS resource fork, not an image: no line either
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref: refs/heads/main\n")  # a hidden folder without images: no line
    assert cli("prepare", "--from-folder", src, "--out", tmp_path / "ds", "--val-fraction", "0")[0] == 0
    assert len(rows(tmp_path / "ds")) == 3
    skipped = {s["ident"]: s["reason"] for s in report(tmp_path / "ds")["skipped"]}
    assert set(skipped) == {".draft.png", ".old"}, skipped
    assert all("hidden" in r and "rename" in r for r in skipped.values())


# --- paths -------------------------------------------------------------------------------------


def test_symlink_out_of_the_folder_is_refused_unless_allowed(tmp_path, cli):
    src = folder_of_covers(tmp_path / "covers", n=3)
    outside = cover(tmp_path / "private" / "secret.jpg", seed=9)
    os.symlink(outside, src / "link.jpg")
    assert cli("prepare", "--from-folder", src, "--out", tmp_path / "ds", "--val-fraction", "0")[0] == 0
    assert len(rows(tmp_path / "ds")) == 3
    (skip,) = report(tmp_path / "ds")["skipped"]
    assert "outside" in skip["reason"] and "--allow-outside-paths" in skip["reason"]
    assert cli("prepare", "--from-folder", src, "--out", tmp_path / "ds2", "--val-fraction", "0", "--allow-outside-paths")[0] == 0
    assert len(rows(tmp_path / "ds2")) == 4


def test_image_column_leaving_the_given_folders_is_refused_unless_allowed(tmp_path, cli):
    cover(tmp_path / "private" / "secret.jpg", seed=9)
    cover(tmp_path / "private" / "other.jpg", seed=10)
    cover(tmp_path / "cat" / "covers" / "ok.jpg", seed=1)
    csv_path = write_catalogue(tmp_path / "cat" / "books.csv", ["title", "image"],
                               [["Fine", "covers/ok.jpg"], ["Sneaky", "../private/secret.jpg"], ["Absolute", str(tmp_path / "private" / "other.jpg")]])
    assert cli("prepare", csv_path, "--out", tmp_path / "ds", "--val-fraction", "0")[0] == 0
    assert [r["title"] for r in rows(tmp_path / "ds")] == ["Fine"]
    reasons = {s["title"]: s["reason"] for s in report(tmp_path / "ds")["skipped"]}
    assert set(reasons) == {"Sneaky", "Absolute"} and all("outside" in r for r in reasons.values())
    assert cli("prepare", csv_path, "--out", tmp_path / "ds2", "--val-fraction", "0", "--allow-outside-paths")[0] == 0
    assert sorted(r["title"] for r in rows(tmp_path / "ds2")) == ["Absolute", "Fine", "Sneaky"]


def test_out_that_is_an_existing_file_is_one_line(tmp_path, cli):
    src = folder_of_covers(tmp_path / "covers", n=2)
    (tmp_path / "taken").write_text("x")
    cli.fails("prepare", "--from-folder", src, "--out", tmp_path / "taken", mentions=("--out",))


def test_out_under_a_regular_file_is_one_line(tmp_path, cli):
    src = folder_of_covers(tmp_path / "covers", n=2)
    (tmp_path / "file.txt").write_text("x")
    cli.fails("prepare", "--from-folder", src, "--out", tmp_path / "file.txt" / "ds", mentions=("--out",))


# --- reports name the book ---------------------------------------------------------------------


def test_skipped_rows_name_title_row_reason_and_url(tmp_path, cli, monkeypatch):
    urls = [f"https://covers.example/{i}.jpg" for i in range(3)]

    def fetch_all(wanted, dest, options):
        dest.mkdir(parents=True, exist_ok=True)
        results = {}
        for i, url in enumerate(wanted):
            if i == 1:
                results[url] = FetchResult(url, None, "HTTP 404")
            else:
                results[url] = FetchResult(url, cover(dest / f"{i}.jpg", seed=i), downloaded=True)
        return results

    monkeypatch.setattr("coverforge.data.prepare.fetch_all", fetch_all)
    csv_path = write_catalogue(tmp_path / "books.csv", ["title", "image_url"], [[f"Book {i}", u] for i, u in enumerate(urls)] + [["No Link", ""]])
    assert cli("prepare", csv_path, "--out", tmp_path / "ds", "--download", "--val-fraction", "0")[0] == 0
    skipped = {s["source_row"]: s for s in report(tmp_path / "ds")["skipped"]}
    assert skipped[1]["title"] == "Book 1" and skipped[1]["url"] == urls[1] and "404" in skipped[1]["reason"]
    assert skipped[3]["title"] == "No Link"
    md = (tmp_path / "ds" / "report.md").read_text(encoding="utf-8")
    line = next(line for line in md.splitlines() if "404" in line)
    assert "Book 1" in line and urls[1] in line and "| 1 |" in line


def test_cover_not_found_names_the_book(tmp_path, cli):
    images = tmp_path / "cat" / "images"
    cover(images / "0.jpg")
    csv_path = write_catalogue(tmp_path / "cat" / "books.csv", ["title"], [["Found"], ["Lost Book"]])
    assert cli("prepare", csv_path, "--out", tmp_path / "ds", "--images", images, "--val-fraction", "0")[0] == 0
    (skip,) = report(tmp_path / "ds")["skipped"]
    assert skip["title"] == "Lost Book" and skip["source_row"] == 1


# --- numeric flags -----------------------------------------------------------------------------

FLAGS = [
    ("--min-size", "0"), ("--workers", "0"), ("--val-fraction", "1.5"), ("--val-fraction", "nan"),
    ("--download-timeout", "0"), ("--download-timeout", "inf"), ("--download-workers", "0"),
    ("--near-duplicate-distance", "65"), ("--grayscale-threshold", "nan"), ("--grayscale-threshold", "-1"), ("--max-side", "0"),
]


@pytest.mark.parametrize("flag,value", FLAGS, ids=[f"{f}={v}" for f, v in FLAGS])
def test_numeric_flag_out_of_range_is_one_line(tmp_path, cli, flag, value):
    src = folder_of_covers(tmp_path / "covers", n=1)
    cli.fails("prepare", "--from-folder", src, "--out", tmp_path / "ds", flag, value, mentions=(flag,))
    assert not (tmp_path / "ds").exists()
