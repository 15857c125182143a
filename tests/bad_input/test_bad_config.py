"""Config values that cannot work are refused when the config is read, with the range in the message."""

from __future__ import annotations

import pytest

from coverforge.config import config_from_dict, load_config
from coverforge.errors import ConfigError
from bad_input_kit import cli, one_torch_thread, tiny_clip_dir  # noqa: F401 - fixtures

BASE = {"model": {"path": "models/base"}, "data": {"dataset": "ds"}}


def _cfg(section: str, field: str, value, extra: dict | None = None):
    values = {k: dict(v) for k, v in BASE.items()}
    values.setdefault(section, {})[field] = value
    for sec, fields in (extra or {}).items():
        values.setdefault(sec, {}).update(fields)
    return config_from_dict(values)


# (section, field, value, words the one-line message must hold: the dotted field and its range)
NUMBERS = [
    ("run", "checkpoint_every", 0, ">= 1"),
    ("run", "log_every", 0, ">= 1"),
    ("run", "checkpoints_total_limit", 0, ">= 1"),
    ("lora", "dropout", 2.0, "[0, 1)"),
    ("lora", "dropout", -0.1, "[0, 1)"),
    ("lora", "rank", 0, ">= 1"),
    ("train", "betas", [1.0, 0.999], "[0, 1)"),
    ("train", "betas", [0.9, -0.5], "[0, 1)"),
    ("train", "weight_decay", -1.0, ">= 0"),
    ("train", "eps", 0.0, "> 0"),
    ("run", "num_workers", -1, ">= 0"),
    ("run", "max_minutes", -1.0, ">= 0"),
    ("train", "max_grad_norm", -1.0, ">= 0"),
    ("train", "min_snr_gamma", -5.0, ">= 0"),
    ("train", "snr_weighting", "max", "truncated"),
    ("train", "noise_offset", -0.1, ">= 0"),
    ("train", "seed", -1, "0.."),
    ("train", "lr_unet", float("nan"), "finite"),
    ("train", "lr_unet", float("inf"), "finite"),
    ("train", "warmup_ratio", float("nan"), "[0, 1)"),
    ("train", "ema_decay", float("nan"), "[0, 1)"),
    ("train", "timestep_max", 5000, "1000"),
    ("data", "caption_dropout", float("nan"), "[0, 1)"),
    ("model", "scratch_noise_shift", float("nan"), "finite"),
    ("model", "scratch_channels", [32, 0], ">= 1"),
    ("model", "scratch_cross_attention_dim", 0, ">= 1"),
    ("text", "max_tokens", 0, ">= 1"),
    ("text", "clip_skip", -1, ">= 0"),
    # What the end of the run needs (validation samples), checked before the first step.
    ("sample", "seeds", [], "at least one"),
    ("sample", "seeds", [-1], "0.."),
    ("sample", "seeds", [2**64], "0.."),
    ("sample", "width", -64, ">= 0"),
    ("sample", "height", -8, ">= 0"),
    ("sample", "steps", 0, "1.."),
    ("sample", "steps", 5000, "1000"),
    ("sample", "guidance_scale", float("nan"), "finite"),
    ("sample", "guidance_scale", float("inf"), "finite"),
    ("sample", "lora_scale", float("nan"), "finite"),
    ("sample", "every", -1, ">= 0"),
]


@pytest.mark.parametrize("section,field,value,words", NUMBERS, ids=[f"{s}.{f}={v}" for s, f, v, _ in NUMBERS])
def test_number_that_cannot_work_is_refused_with_its_range(section, field, value, words):
    with pytest.raises(ConfigError) as e:
        _cfg(section, field, value)
    message = str(e.value)
    assert f"{section}.{field}" in message and words in message and "\n" not in message, message


def test_scratch_sample_size_must_fit_the_unet():
    """A from-scratch pixel model halves the image per level: validation samples of another size fail after training."""
    with pytest.raises(ConfigError, match=r"sample.width = 40 .*multiple of 16"):
        config_from_dict({"train": {"recipe": "scratch"}, "model": {"scratch_channels": [8, 8, 8, 8, 8]}, "sample": {"width": 40, "height": 48}})


def test_good_values_at_the_edges_still_load():
    cfg = config_from_dict({**BASE, "train": {"betas": [0.0, 0.999], "weight_decay": 0.0, "max_minutes": 0.0, "seed": 2**32 - 1},
                            "lora": {"dropout": 0.0}, "data": {"dataset": "ds", "num_workers": 0},
                            "sample": {"seeds": [0, 2**64 - 1], "width": 0, "steps": 1000}})
    assert cfg.sample.seeds == [0, 2**64 - 1] and cfg.train.seed == 2**32 - 1


def test_override_on_the_command_line_is_checked_too(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[model]\npath = "m"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"run.log_every = 0 must be >= 1"):
        load_config(path, ["run.log_every=0"])


def test_train_cli_refuses_a_bad_number_in_one_line(tmp_path, cli):
    path = tmp_path / "c.toml"
    path.write_text('[model]\npath = "m"\n[sample]\nseeds = []\n', encoding="utf-8")
    cli.fails("train", path, "--out", tmp_path / "run", mentions=("sample.seeds",))
    assert not (tmp_path / "run").exists()


# --- config files that are not UTF-8 -----------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "cp1252"])
def test_config_in_another_encoding_reads_the_right_text(tmp_path, encoding, caplog):
    path = tmp_path / "c.toml"
    path.write_bytes('[model]\npath = "m"\n[sample]\nnegative_prompt = "café, naïve"\n'.encode(encoding))
    cfg = load_config(path)
    assert cfg.sample.negative_prompt == "café, naïve"
    if encoding == "cp1252":  # a legacy encoding is read, but never silently
        assert "Windows-1252" in caplog.text and str(path) in caplog.text


def test_config_that_is_not_text_is_one_line(tmp_path, cli):
    path = tmp_path / "c.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x81\x8d\x8f\x90\x9d" * 4)
    cli.fails("train", path, "--out", tmp_path / "run", mentions=(str(path),))
