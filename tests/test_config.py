"""Typed config: TOML in, dotted overrides, errors that name the field, TOML back out."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from coverforge.config import Config, config_from_dict, diff_configs, load_config, to_toml
from coverforge.errors import ConfigError, CoverforgeError

BASE = """
[model]
path = "models/tiny-sd15"

[text]
max_tokens = 300
pooled = "mean"

[train]
recipe = "lora"
max_steps = 50
lr_unet = 2e-4
betas = [0.9, 0.99]

[sample]
prompts = ["a red book", "a blue book"]
"""


@pytest.fixture
def toml_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(BASE)
    return path


def test_load_toml_file(toml_file):
    cfg = load_config(toml_file)
    assert isinstance(cfg, Config)
    assert cfg.model.path == "models/tiny-sd15"
    assert cfg.text.max_tokens == 300 and cfg.text.pooled == "mean"
    assert cfg.train.max_steps == 50 and cfg.train.lr_unet == 2e-4
    assert cfg.train.betas == [0.9, 0.99]
    assert cfg.sample.prompts == ["a red book", "a blue book"]
    # Untouched fields keep their defaults.
    assert cfg.text.clip_skip == 0 and cfg.data.resolution == 512


def test_defaults_without_file_need_a_model_or_scratch():
    with pytest.raises(ConfigError, match="model.path"):
        load_config(None)
    assert load_config(None, ["train.recipe=scratch"]).train.recipe == "scratch"


def test_overrides_of_every_kind(toml_file):
    cfg = load_config(
        toml_file,
        [
            "train.max_steps=200",  # int
            "train.lr_unet=3e-4",  # float
            "train.lr_text_encoder=1",  # int widens to float
            "data.random_flip=true",  # bool
            "train.betas=[0.8, 0.95]",  # list of floats
            "sample.seeds=[1, 2, 3]",  # list of ints
            "sample.prompts=['x', \"y z\"]",  # list of strings
            "model.path=/data/models/my model",  # bare string with a slash and a space
            "sample.sampler=euler_a",  # bare string that is a choice
            'sample.negative_prompt="blurry, text"',  # quoted string
        ],
    )
    assert cfg.train.max_steps == 200 and type(cfg.train.max_steps) is int
    assert cfg.train.lr_unet == 3e-4
    assert cfg.train.lr_text_encoder == 1.0 and type(cfg.train.lr_text_encoder) is float
    assert cfg.data.random_flip is True
    assert cfg.train.betas == [0.8, 0.95]
    assert cfg.sample.seeds == [1, 2, 3]
    assert cfg.sample.prompts == ["x", "y z"]
    assert cfg.model.path == "/data/models/my model"
    assert cfg.sample.sampler == "euler_a"
    assert cfg.sample.negative_prompt == "blurry, text"
    # Overrides win over the file; other file values stay.
    assert cfg.text.pooled == "mean"


def test_override_of_a_section_the_file_does_not_have(toml_file):
    assert load_config(toml_file, ["lora.rank=8"]).lora.rank == 8


@pytest.mark.parametrize(
    "override,field",
    [
        ("train.max_stepz=10", "train.max_stepz"),
        ("trian.max_steps=10", "trian"),
        ("text.pooling=mean", "text.pooling"),
    ],
)
def test_unknown_field_names_the_dotted_field(toml_file, override, field):
    with pytest.raises(ConfigError) as err:
        load_config(toml_file, [override])
    assert field in str(err.value) and "unknown" in str(err.value)


@pytest.mark.parametrize(
    "override,field,wanted",
    [
        ("train.max_steps=abc", "train.max_steps", "integer"),
        ("train.max_steps=2.5", "train.max_steps", "integer"),
        ("train.max_steps=true", "train.max_steps", "integer"),
        ("data.random_flip=1", "data.random_flip", "true or false"),
        ("data.random_flip=yes", "data.random_flip", "true or false"),
        ("train.lr_unet=fast", "train.lr_unet", "float"),
        ("model.path=3", "model.path", "str"),
        ("train.betas=0.9", "train.betas", "list"),
        ("sample.seeds=[1, 'two']", "sample.seeds[1]", "integer"),
    ],
)
def test_wrong_type_names_the_field(toml_file, override, field, wanted):
    with pytest.raises(ConfigError) as err:
        load_config(toml_file, [override])
    assert field in str(err.value) and wanted in str(err.value)


@pytest.mark.parametrize(
    "override,field,allowed",
    [
        ("text.pooled=median", "text.pooled", ["first", "mean", "last"]),
        ("model.family=sd3", "model.family", ["sd15", "sd2", "sdxl"]),
        ("train.recipe=dreambooth", "train.recipe", ["lora", "full", "scratch"]),
        ("train.loss=mae", "train.loss", ["l2", "l1", "huber"]),
        ("sample.sampler=heun", "sample.sampler", ["euler", "ddim", "unipc"]),
    ],
)
def test_bad_choice_names_field_and_allowed_values(toml_file, override, field, allowed):
    with pytest.raises(ConfigError) as err:
        load_config(toml_file, [override])
    msg = str(err.value)
    assert field in msg
    assert all(a in msg for a in allowed)


@pytest.mark.parametrize(
    "override,field",
    [
        ("data.resolution=500", "data.resolution"),
        ("data.caption_dropout=1.0", "data.caption_dropout"),
        ("train.max_steps=0", "train.max_steps"),
        ("text.max_tokens=-1", "text.max_tokens"),
        ("train.edge_loss_weight=-0.5", "train.edge_loss_weight"),
        ("train.betas=[0.9]", "train.betas"),
        ("sample.width=100", "sample.width"),
    ],
)
def test_bad_values_name_the_field(toml_file, override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(toml_file, [override])


def test_malformed_override_and_non_section(toml_file):
    with pytest.raises(ConfigError, match="section.field=value"):
        load_config(toml_file, ["train.max_steps"])
    with pytest.raises(ConfigError, match="model.path"):
        load_config(toml_file, ["model.path.x=1"])


def test_missing_and_invalid_files_are_named(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="nope.toml"):
        load_config(missing)
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nmax_steps = 1\n")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_config(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[model]\npath = "x"\n[train]\nlearning_rate = 1e-4\n')
    with pytest.raises(ConfigError, match=r"train\.learning_rate"):
        load_config(unknown)


def test_config_errors_are_user_errors():
    assert issubclass(ConfigError, CoverforgeError)


def test_to_toml_round_trips(toml_file):
    cfg = load_config(toml_file, ["data.random_flip=true", "train.betas=[0.5, 0.6]", "sample.prompts=['a \"quoted\" title']"])
    text = to_toml(cfg)
    assert config_from_dict(tomllib.loads(text)) == cfg
    resolved = toml_file.parent / "resolved.toml"
    resolved.write_text(text)
    assert load_config(resolved) == cfg
    # Every section and field is written, so the file is the whole resolved config.
    written = tomllib.loads(text)
    for section in dataclasses.fields(cfg):
        assert set(written[section.name]) == {f.name for f in dataclasses.fields(getattr(cfg, section.name))}


def test_diff_configs(toml_file):
    a = load_config(toml_file)
    b = load_config(toml_file, ["train.max_steps=999", "text.pooled=last"])
    assert diff_configs(a, a) == []
    assert diff_configs(a, b) == ["text.pooled", "train.max_steps"]
    assert diff_configs(b, a) == ["text.pooled", "train.max_steps"]


def test_fields_are_documented():
    # Options are typed dataclasses; every section has a docstring for the user.
    for section in dataclasses.fields(Config):
        assert section.type is not None
        assert (section.default_factory().__doc__ or "").strip()
