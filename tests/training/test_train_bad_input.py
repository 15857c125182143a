"""Bad inputs get one-line errors naming the file or field; a cover that breaks mid-run is skipped."""

import json
import shutil

import pytest

from coverforge.cli.main import main
from coverforge.config import config_from_dict
from coverforge.errors import ConfigError, CoverforgeError
from coverforge.sampling.from_run import load_model_generator
from coverforge.training.loop import train


def _cfg(tiny_models, dataset, **train_values):
    return config_from_dict({"model": {"path": str(tiny_models["sd15"])}, "data": {"dataset": str(dataset), "resolution": 64},
                             "train": {"recipe": "lora", "max_steps": 2, "batch_size": 2, **train_values}, "lora": {"rank": 4, "alpha": 4}})


def test_typo_in_a_config_key_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"train.max_stepz; did you mean train.max_steps\?"):
        config_from_dict({"train": {"max_stepz": 3}, "model": {"path": "x"}})


def test_empty_dataset_is_refused(tmp_path, tiny_models, colour_dataset):
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    (empty / "train" / "metadata.jsonl").write_text("")
    with pytest.raises(CoverforgeError, match="holds 0 images"):
        train(_cfg(tiny_models, empty), tmp_path / "run", progress=False)


def test_not_enough_disk_is_refused_before_training(tmp_path, tiny_models, colour_dataset, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(CoverforgeError, match="GiB free but the checkpoints need"):
        train(_cfg(tiny_models, colour_dataset), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_cover_that_breaks_mid_run_is_skipped_and_counted(tmp_path, tiny_models, colour_dataset):
    data = tmp_path / "data"
    shutil.copytree(colour_dataset, data)
    broken = sorted((data / "train").glob("*.png"))[0]
    broken.write_bytes(broken.read_bytes()[:60])  # truncated after prepare validated it
    run = tmp_path / "run"
    result = train(_cfg(tiny_models, data, max_steps=12), run, progress=False)
    assert result.step == 12
    summary = json.loads((run / "logs" / "process-0.json").read_text())
    assert summary["failed_images"] and all(p.endswith(broken.name) for p in summary["failed_images"])


def test_lora_for_another_family_is_a_one_line_error(tmp_path, tiny_models, colour_dataset):
    cfg = config_from_dict({"model": {"path": str(tiny_models["sdxl"])}, "data": {"dataset": str(colour_dataset), "resolution": 64},
                            "train": {"recipe": "lora", "max_steps": 1, "batch_size": 2}, "lora": {"rank": 4, "alpha": 4}})
    train(cfg, tmp_path / "xl", progress=False)
    with pytest.raises(CoverforgeError, match="does not fit this sd15 model"):
        load_model_generator(str(tiny_models["sd15"]), lora=str(tmp_path / "xl" / "final" / "lora"))


def test_missing_model_folder_exits_2(tmp_path, colour_dataset):
    config = tmp_path / "c.toml"
    config.write_text(f'[model]\npath = "{tmp_path / "nope"}"\n[data]\ndataset = "{colour_dataset}"\nresolution = 64\n')
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 2
