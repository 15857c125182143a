"""Inputs that could hang a run (a named pipe where a file should be) end it, in a subprocess with a timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bad_input_kit import cover
from bad_input_kit import cli, one_torch_thread, tiny_clip_dir  # noqa: F401 - fixtures

TIMEOUT = 60  # a hang fails the test instead of the suite


def coverforge(*argv, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    try:
        return subprocess.run([sys.executable, "-m", "coverforge", *map(str, argv)], capture_output=True, text=True,
                              timeout=TIMEOUT, env=env, cwd=cwd)
    except subprocess.TimeoutExpired:
        pytest.fail(f"coverforge {' '.join(map(str, argv))} hung for {TIMEOUT} s")


def one_line_error(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_named_pipe_in_the_image_folder_is_reported_not_read(tmp_path):
    src = tmp_path / "covers"
    for i in range(2):
        cover(src / f"c{i}.jpg", seed=i)
        (src / f"c{i}.txt").write_text(f"caption {i}")
    os.mkfifo(src / "odd.jpg")
    os.mkfifo(src / "odd.heic")
    result = coverforge("prepare", "--from-folder", src, "--out", tmp_path / "ds", "--val-fraction", "0")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "ds" / "report.json").read_text())
    assert report["kept"] == 2 and {s["ident"] for s in report["skipped"]} == {"odd.jpg", "odd.heic"}


def test_named_pipe_as_template_is_one_line(tmp_path):
    cover(tmp_path / "covers" / "c0.jpg")
    os.mkfifo(tmp_path / "template.txt")
    line = one_line_error(coverforge("prepare", "--from-folder", tmp_path / "covers", "--out", tmp_path / "ds",
                                     "--template", tmp_path / "template.txt"))
    assert "--template" in line


def test_named_pipe_as_prompts_file_is_one_line(tmp_path):
    os.mkfifo(tmp_path / "prompts.txt")
    line = one_line_error(coverforge("generate", "--model", tmp_path / "no-model", "--prompts-file", tmp_path / "prompts.txt",
                                     "--out", tmp_path / "out"))
    assert "--prompts-file" in line
