"""The `coverforge` command: fast help, lazy imports, exit codes, one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coverforge.cli.main import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "coverforge"
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "coverforge"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=timeout)


def test_help_is_fast_and_lists_every_subcommand():
    # Best of two: the machine is shared, one slow start says nothing about the code.
    times = []
    for _ in range(2):
        start = time.perf_counter()
        done = run_cli("--help")
        times.append(time.perf_counter() - start)
        assert done.returncode == 0, done.stderr
    assert min(times) < 2.0, times
    for name in SUBCOMMANDS:
        assert name in done.stdout


def test_no_arguments_prints_help():
    done = run_cli()
    assert done.returncode == 0 and "usage: coverforge" in done.stdout


def test_help_does_not_import_heavy_libraries():
    code = (
        "import contextlib, io, sys\n"
        "import coverforge.cli.main as m\n"
        "for name in list(m.SUBCOMMANDS) + [None]:\n"
        "    argv = [name, '--help'] if name else ['--help']\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "        try:\n"
        "            m.main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "print(' '.join(x for x in ('torch', 'diffusers', 'transformers') if x in sys.modules) or 'none')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"


def test_version():
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.startswith("coverforge ")


def test_unknown_subcommand_is_a_usage_error():
    done = run_cli("paint")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "invalid choice" in done.stderr


def _error_line(stderr: str, command: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith(f"coverforge {command}: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_missing_config_file_exits_2_with_one_line(tmp_path):
    done = run_cli("train", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    line = _error_line(done.stderr, "train")
    assert "missing.toml" in line
    assert not (tmp_path / "run").exists()


def test_bad_override_exits_2_with_one_line(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('[model]\npath = "models/tiny"\n')
    rc = main(["train", str(config), "train.max_steps=abc", "--out", str(tmp_path / "run")])
    assert rc == 2
    line = _error_line(capsys.readouterr().err, "train")
    assert "train.max_steps" in line and "integer" in line


def test_hub_id_without_hub_exits_2_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc = main(["generate", "--model", "someone/not-here", "--prompt", "a red book", "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "someone/not-here" in _error_line(capsys.readouterr().err, "generate")


def test_tiny_model_command_writes_the_layout(tmp_path, tiny_models):
    out = tmp_path / "tiny"
    done = run_cli("tiny-model", "--family", "sd15", "--out", str(out))
    assert done.returncode == 0, done.stderr
    index = json.loads((out / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (out / name).is_dir()
    # Same default seed as the fixture's model: the command writes the same bytes.
    digest = lambda root: {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    assert digest(out) == digest(tiny_models["sd15"])


def test_tiny_model_bad_family_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["tiny-model", "--family", "sd3", "--out", "x"])
    assert exit_.value.code == 2
    assert "sd3" in capsys.readouterr().err
