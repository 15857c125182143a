"""Runs that cannot go on end with one line and lose nothing (issue 23): covers that stop decoding
end the run instead of spinning; the trained weights are written before the final samples."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import tomli_w

from coverforge.config import config_from_dict
from coverforge.training import loop


def test_a_run_whose_covers_all_fail_stops_with_one_line(tiny_models, colour_dataset, tmp_path):
    data = shutil.copytree(colour_dataset, tmp_path / "data")
    for png in (data / "train").glob("*.png"):
        png.write_bytes(b"no longer an image")
    config = tmp_path / "c.toml"
    config.write_text(tomli_w.dumps({
        "model": {"path": str(tiny_models["sd15"])},
        "data": {"dataset": str(data), "resolution": 32, "buckets": False, "cache": False},
        "train": {"recipe": "lora", "max_steps": 5, "batch_size": 2, "checkpoint_every": 100},
    }))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "coverforge", "train", str(config), "--out", str(tmp_path / "run"), "--no-progress"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "no cover decoded" in errors[0] and "prepare" in errors[0]
    assert "Traceback" not in done.stderr
    warnings = [line for line in done.stderr.splitlines() if "skipping" in line]
    assert 0 < len(warnings) <= 16  # once per cover, not once per attempt


def test_final_weights_are_written_before_the_last_samples(tiny_models, colour_dataset, tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("sampling failed")

    monkeypatch.setattr(loop, "sample_validation", broken)
    cfg = config_from_dict({
        "model": {"path": str(tiny_models["sd15"])},
        "data": {"dataset": str(colour_dataset), "resolution": 32, "buckets": False, "cache_dir": str(tmp_path / "cache")},
        "train": {"recipe": "lora", "max_steps": 1, "batch_size": 2, "checkpoint_every": 100},
        "sample": {"prompts": ["a red book"], "steps": 2},
    })
    with pytest.raises(RuntimeError):
        loop.train(cfg, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "final" / "lora" / "pytorch_lora_weights.safetensors").is_file()
