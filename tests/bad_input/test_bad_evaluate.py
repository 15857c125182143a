"""`evaluate` with broken references, images and settings: one line each; figures left out are said so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from bad_input_kit import write_split
from bad_input_kit import cli, one_torch_thread, tiny_clip_dir  # noqa: F401 - fixtures


@pytest.fixture
def clip(tiny_clip_dir) -> list[str]:
    return ["--extractor", "clip", "--clip-model", str(tiny_clip_dir), "--kid-subsets", "3"]


@pytest.fixture
def reference(tmp_path, cli, clip) -> Path:
    split = write_split(tmp_path / "ds" / "validation", 4, seed=0)
    code, _, err = cli("evaluate", "reference", split, "--out", tmp_path / "ref", *clip)
    assert code == 0, err
    return tmp_path / "ref"


@pytest.fixture
def generated(tmp_path) -> Path:
    return write_split(tmp_path / "gen", 3, seed=1)


def test_reference_of_one_image_is_one_line(tmp_path, cli, clip):
    split = write_split(tmp_path / "one" / "validation", 1)
    cli.fails("evaluate", "reference", split, "--out", tmp_path / "ref", *clip, mentions=("2",))


def test_truncated_stats_file_is_one_line(tmp_path, cli, clip, reference, generated):
    stats = reference / "stats.safetensors"
    stats.write_bytes(stats.read_bytes()[: stats.stat().st_size // 2])
    cli.fails("evaluate", generated, "--reference", reference, "--out", tmp_path / "rep", *clip, mentions=("stats.safetensors",))


def test_reference_json_that_is_not_json_is_one_line(tmp_path, cli, clip, reference, generated):
    (reference / "reference.json").write_text("{ this is not json", encoding="utf-8")
    cli.fails("evaluate", generated, "--reference", reference, "--out", tmp_path / "rep", *clip, mentions=("reference.json",))


def test_reference_json_missing_fields_is_one_line(tmp_path, cli, clip, reference, generated):
    (reference / "reference.json").write_text("[1, 2, 3]", encoding="utf-8")
    cli.fails("evaluate", generated, "--reference", reference, "--out", tmp_path / "rep", *clip, mentions=("reference.json",))


def test_feature_widths_that_differ_are_one_line(tmp_path, cli, clip, reference, generated):
    stats = reference / "stats.safetensors"
    tensors = load_file(str(stats))
    narrow = tensors["features"][:, :4].contiguous()
    save_file({"mu": tensors["mu"][:4].contiguous(), "sigma": tensors["sigma"][:4, :4].contiguous(), "features": narrow}, str(stats))
    cli.fails("evaluate", generated, "--reference", reference, "--out", tmp_path / "rep", *clip, mentions=("width",))


def test_corrupt_generated_image_is_one_line_naming_it(tmp_path, cli, clip, reference, generated):
    bad = generated / "0001.png"
    bad.write_bytes(bad.read_bytes()[:80])
    cli.fails("evaluate", generated, "--reference", reference, "--out", tmp_path / "rep", *clip, mentions=("0001.png",))


@pytest.mark.parametrize("flag,value", [("--kid-subset-size", "0"), ("--kid-subset-size", "1"), ("--kid-subsets", "0"),
                                        ("--batch-size", "0"), ("--limit", "-1"), ("--grid-per-genre", "-1"), ("--seed", "-1")])
def test_numeric_flag_out_of_range_is_one_line(tmp_path, cli, generated, flag, value):
    cli.fails("evaluate", generated, "--extractor", "none", "--out", tmp_path / "rep", f"{flag}={value}", mentions=(flag,))


def test_too_few_images_for_fid_says_so_in_the_report(tmp_path, cli, clip, reference):
    one = write_split(tmp_path / "one", 1, seed=3)
    code, _, err = cli("evaluate", one, "--reference", reference, "--out", tmp_path / "rep", *clip)
    assert code == 0, err
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert "fid" not in metrics["overall"]
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "FID" in md and "at least 2" in md


def test_generated_metadata_in_latin1_is_read(tmp_path, cli):
    gen = write_split(tmp_path / "gen", 2)
    meta = gen / "metadata.jsonl"
    meta.write_bytes(meta.read_text(encoding="utf-8").replace("a fantasy", "une fée").encode("cp1252"))
    code, _, err = cli("evaluate", gen, "--extractor", "none", "--out", tmp_path / "rep")
    assert code == 0, err


def test_out_under_a_regular_file_is_one_line(tmp_path, cli, generated):
    (tmp_path / "file.txt").write_text("x")
    cli.fails("evaluate", generated, "--extractor", "none", "--out", tmp_path / "file.txt" / "rep", mentions=("--out",))


def test_good_evaluation_still_reports_every_figure(tmp_path, cli, clip, reference, generated):
    code, _, err = cli("evaluate", generated, "--reference", reference, "--out", tmp_path / "rep", *clip)
    assert code == 0, err
    overall = json.loads((tmp_path / "rep" / "metrics.json").read_text())["overall"]
    assert {"fid", "kid", "clip_score", "grayscale_rate"} <= set(overall)
    assert torch.isfinite(torch.tensor(overall["fid"]["value"]))
