"""`coverforge train` end to end through the CLI entry point: the run folder it writes."""

from __future__ import annotations

import json

import numpy as np
import tomli_w
from PIL import Image

from coverforge.cli.main import main
from coverforge.config import load_config
from coverforge.image_grid import LABEL_HEIGHT
from coverforge.training import checkpoint as ckpt


def test_train_cli_writes_a_complete_run_folder(tiny_models, colour_dataset, tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(tomli_w.dumps({
        "model": {"path": str(tiny_models["sd15"])},
        "data": {"dataset": str(colour_dataset), "resolution": 32, "buckets": False},
        "train": {"recipe": "lora", "max_steps": 100, "batch_size": 2, "checkpoint_every": 2, "log_every": 1},
        "lora": {"rank": 4, "alpha": 4},
        "sample": {"prompts": ["a red book", "a blue book"], "seeds": [1, 2, 3], "steps": 2, "every": 2},
    }))
    run = tmp_path / "run"
    # Overrides on the command line win over the file.
    assert main(["train", str(config), "train.max_steps=4", "train.lr_unet=2e-4", "--out", str(run), "--no-progress"]) == 0
    assert "trained 4 steps" in capsys.readouterr().out

    saved = load_config(run / "config.toml")
    assert saved.train.max_steps == 4 and saved.train.lr_unet == 2e-4
    assert saved == load_config(config, ["train.max_steps=4", "train.lr_unet=2e-4"])

    assert ckpt.resolve_checkpoint(run, "latest").name == "step-00000004"
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == ["step-00000002", "step-00000004"]
    assert (run / "final" / "lora" / "pytorch_lora_weights.safetensors").stat().st_size > 0

    rows = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss"]) and r["lr/unet"] == 2e-4 and "grad_norm" in r and r["images_per_s"] > 0 for r in rows)
    with Image.open(run / "logs" / "loss.png") as im:
        assert im.format == "PNG" and im.size[0] > 100

    samples = sorted(p.name for p in (run / "samples").glob("*.png"))
    assert samples == ["step-00000002.png", "step-00000004.png"]
    with Image.open(run / "samples" / "step-00000004.png") as im:
        # A grid: rows are prompts, columns seeds, at the native 64 px, a label line under each.
        assert im.size == (3 * 64, 2 * (64 + LABEL_HEIGHT))
        cells = np.asarray(im.convert("RGB"), dtype=np.int16)
    assert np.abs(cells[:64, :64] - cells[:64, 64:128]).mean() > 1  # different seeds, different images


def test_train_cli_reports_a_config_typo_in_one_line(tiny_models, colour_dataset, tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(tomli_w.dumps({"model": {"path": str(tiny_models["sd15"])}, "data": {"dataset": str(colour_dataset)}}))
    assert main(["train", str(config), "train.max_stepz=3", "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "max_stepz" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run" / "checkpoints").exists()
