"""`generate` flags and inputs that cannot work: one line each, checked before any model loads."""

from __future__ import annotations

import json

import pytest
from bad_input_kit import cli, one_torch_thread, tiny_clip_dir  # noqa: F401 - fixtures

MODEL = "/nonexistent/model"  # range checks must come first: this path is never reached

FLAGS = [
    ("--steps", "0"), ("--steps", "-5"), ("--steps", "100000"), ("--batch-size", "0"), ("--batch-size", "-2"),
    ("--aspect", "3:0"), ("--aspect", "0:3"), ("--aspect", "-2:3"), ("--aspect", "nan:1"), ("--aspect", "inf:1"), ("--aspect", "2x3"),
    ("--seed", "-1"), ("--seed", str(2**64)), ("--guidance", "nan"), ("--guidance", "inf"), ("--guidance", "-1"),
    ("--lora-scale", "nan"), ("--width", "-64"), ("--height", "-8"), ("--limit", "-1"),
]


@pytest.mark.parametrize("flag,value", FLAGS, ids=[f"{f}={v}" for f, v in FLAGS])
def test_numeric_flag_out_of_range_is_one_line(tmp_path, cli, flag, value):
    cli.fails("generate", "--model", MODEL, "--prompt", "a red book", "--out", tmp_path / "out", f"{flag}={value}", mentions=(flag,))
    assert not (tmp_path / "out").exists()


def test_seed_range_counts_every_image(tmp_path, cli):
    """Image i gets seed + i: the last one must still be a 64-bit seed."""
    cli.fails("generate", "--model", MODEL, "--prompt", "a", "--prompt", "b", "--seed", str(2**64 - 1), "--out", tmp_path / "o",
              mentions=("--seed",))


def test_missing_prompts_file_is_one_line(tmp_path, cli):
    cli.fails("generate", "--model", MODEL, "--prompts-file", tmp_path / "nope.txt", "--out", tmp_path / "out", mentions=("--prompts-file",))


def test_prompts_file_that_is_a_folder_is_one_line(tmp_path, cli):
    cli.fails("generate", "--model", MODEL, "--prompts-file", tmp_path, "--out", tmp_path / "out", mentions=("--prompts-file",))


def test_out_under_a_regular_file_is_one_line(tmp_path, cli):
    (tmp_path / "file.txt").write_text("x")
    cli.fails("generate", "--model", MODEL, "--prompt", "a", "--out", tmp_path / "file.txt" / "out", mentions=("--out",))


def test_prompts_file_in_latin1_generates_the_right_prompts(tmp_path, cli, tiny_models):
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes("Une couverture rosé\nUn café noir\n".encode("cp1252"))
    code, _, err = cli("generate", "--model", tiny_models["sd15"], "--prompts-file", prompts, "--out", tmp_path / "out",
                       "--steps", "1", "--width", "32", "--height", "32")
    assert code == 0, err
    request = json.loads((tmp_path / "out" / "request.json").read_text())
    assert request["prompts"] == ["Une couverture rosé", "Un café noir"]
