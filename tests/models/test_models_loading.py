"""`load_model`: local folders, hub ids without a hub, single files, broken folders, pickles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from coverforge.errors import CoverforgeError
from coverforge.models.loading import detect_family, load_model, save_single_file


def copy_model(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src, dst))


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.fixture(scope="module")
def sd15_parts(tiny_models):
    return load_model(str(tiny_models["sd15"]))


# --- family detection ------------------------------------------------------------------------


def test_detects_each_family(tiny_models):
    assert {fam: detect_family(folder) for fam, folder in tiny_models.items()} == {"sd15": "sd15", "sd2": "sd2", "sdxl": "sdxl"}


def test_family_comes_from_the_folder_not_the_name(tiny_models, tmp_path):
    misleading = copy_model(tiny_models["sd15"], tmp_path / "sdxl-model")
    parts = load_model(str(misleading))
    assert parts.family == "sd15"
    assert parts.text_encoder_2 is None and parts.tokenizer_2 is None
    assert detect_family(copy_model(tiny_models["sd2"], tmp_path / "stable-diffusion-v1-5")) == "sd2"


def test_declared_family_must_match(tiny_models):
    with pytest.raises(CoverforgeError, match="sd15"):
        load_model(str(tiny_models["sd15"]), family="sdxl")


# --- local folders ---------------------------------------------------------------------------


def test_local_folder_loads_every_component(tiny_models, sd15_parts):
    from diffusers import UNet2DConditionModel

    assert sd15_parts.family == "sd15"
    assert sd15_parts.vae is not None and sd15_parts.tokenizer is not None
    assert sd15_parts.scheduler_config["prediction_type"] == "epsilon"
    assert_same_weights(sd15_parts.unet, UNet2DConditionModel.from_pretrained(tiny_models["sd15"] / "unet"))


def test_sdxl_folder_loads_both_encoders(tiny_models):
    parts = load_model(str(tiny_models["sdxl"]))
    assert parts.family == "sdxl"
    assert len(parts.text_encoders) == 2
    widths = [te.config.hidden_size for te in parts.text_encoders]
    assert widths[0] != widths[1]
    assert parts.tokenizer_2.pad_token_id == 0


# --- hub ids ---------------------------------------------------------------------------------


def test_hub_id_with_offline_hub_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CoverforgeError) as err:
        load_model("someone/some-model-that-is-not-here")
    msg = str(err.value)
    assert "someone/some-model-that-is-not-here" in msg and "hub" in msg
    assert "model.path" in msg  # says what to do
    assert "\n" not in msg


def test_hub_id_with_unreachable_hub_gives_clear_error(monkeypatch):
    import huggingface_hub

    def unreachable(*args, **kwargs):
        raise ConnectionError("Failed to establish a new connection: [Errno 111] Connection refused\nmore detail")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(CoverforgeError) as err:
        load_model("owner/name")
    msg = str(err.value)
    assert "'owner/name'" in msg and "Connection refused" in msg
    assert "\n" not in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chained traceback


def test_path_that_is_nothing_is_refused(tmp_path):
    with pytest.raises(CoverforgeError, match="neither a local folder"):
        load_model(str(tmp_path / "no" / "such" / "model"))
    with pytest.raises(CoverforgeError, match="model.path is empty"):
        load_model("")


# --- single-file checkpoints -----------------------------------------------------------------

def test_single_file_with_config_folder_gives_the_files_weights(tiny_models, tmp_path, sd15_parts):
    from coverforge.models.tiny import write_tiny_model

    # Weights from a different seed: the loaded UNet must be the file's, not the config folder's.
    other = load_model(str(write_tiny_model("sd15", tmp_path / "seed1", seed=1)))
    file = tmp_path / "model.safetensors"
    save_single_file(other, file)
    parts = load_model(str(file), config_folder=str(tiny_models["sd15"]))
    assert parts.family == "sd15"
    assert parts.source == str(file)
    assert_same_weights(parts.unet, other.unet)
    assert_same_weights(parts.text_encoder, other.text_encoder)
    assert_same_weights(parts.vae, other.vae)
    assert not torch.equal(parts.unet.conv_in.weight, sd15_parts.unet.conv_in.weight)


def test_single_file_needs_config_folder(tmp_path, sd15_parts):
    file = tmp_path / "model.safetensors"
    save_single_file(sd15_parts, file)
    with pytest.raises(CoverforgeError, match="config_folder"):
        load_model(str(file))


def test_corrupt_single_file_names_the_file(tiny_models, tmp_path):
    file = tmp_path / "broken.safetensors"
    file.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header at all")
    with pytest.raises(CoverforgeError, match="broken.safetensors"):
        load_model(str(file), config_folder=str(tiny_models["sd15"]))


def test_single_file_from_another_family_is_refused(tiny_models, tmp_path, sd15_parts):
    # sd15 uses conv proj_in/out in its transformers, sd2 linear ones: same keys, different shapes.
    file = tmp_path / "sd15.safetensors"
    save_single_file(sd15_parts, file)
    with pytest.raises(CoverforgeError, match="sd15.safetensors"):
        load_model(str(file), config_folder=str(tiny_models["sd2"]))


def test_single_pickled_checkpoint_is_refused(tiny_models, tmp_path, sd15_parts):
    file = tmp_path / "model.ckpt"
    torch.save({f"unet.{k}": v for k, v in sd15_parts.unet.state_dict().items()}, file)
    with pytest.raises(CoverforgeError, match="pickle"):
        load_model(str(file), config_folder=str(tiny_models["sd15"]))


# --- incomplete and corrupt folders ----------------------------------------------------------


def test_missing_component_folder_is_named(tiny_models, tmp_path):
    folder = copy_model(tiny_models["sd15"], tmp_path / "m")
    shutil.rmtree(folder / "vae")
    with pytest.raises(CoverforgeError) as err:
        load_model(str(folder))
    assert str(folder / "vae") in str(err.value) and "missing" in str(err.value)


def test_missing_tokenizer_folder_is_named(tiny_models, tmp_path):
    folder = copy_model(tiny_models["sd15"], tmp_path / "m")
    shutil.rmtree(folder / "tokenizer")
    with pytest.raises(CoverforgeError, match="tokenizer"):
        load_model(str(folder))


@pytest.mark.parametrize("file", ["model_index.json", "unet/config.json", "text_encoder/config.json", "scheduler/scheduler_config.json", "vae/config.json"])
def test_missing_config_is_named(tiny_models, tmp_path, file):
    folder = copy_model(tiny_models["sd15"], tmp_path / "m")
    (folder / file).unlink()
    with pytest.raises(CoverforgeError) as err:
        load_model(str(folder))
    assert str(folder / file) in str(err.value)


@pytest.mark.parametrize("file", ["model_index.json", "unet/config.json", "text_encoder/config.json"])
def test_corrupt_json_is_named(tiny_models, tmp_path, file):
    folder = copy_model(tiny_models["sd15"], tmp_path / "m")
    (folder / file).write_text('{"_class_name": "UNet2DConditionModel",')
    with pytest.raises(CoverforgeError) as err:
        load_model(str(folder))
    assert str(folder / file) in str(err.value) and "JSON" in str(err.value)


@pytest.mark.parametrize(
    "component,file",
    [("unet", "diffusion_pytorch_model.safetensors"), pytest.param("text_encoder", "model.safetensors")],
)
def test_corrupt_safetensors_is_named(tiny_models, tmp_path, component, file):
    folder = copy_model(tiny_models["sd15"], tmp_path / "m")
    (folder / component / file).write_bytes(b"\xff" * 64)
    with pytest.raises(CoverforgeError) as err:
        load_model(str(folder))
    assert str(folder / component) in str(err.value)


def test_component_without_weights_is_named(tiny_models, tmp_path):
    folder = copy_model(tiny_models["sd15"], tmp_path / "m")
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(CoverforgeError, match="no weights"):
        load_model(str(folder))


# --- pickles ---------------------------------------------------------------------------------


def test_pickled_component_is_refused_unless_allowed(tiny_models, tmp_path, sd15_parts):
    folder = copy_model(tiny_models["sd15"], tmp_path / "m")
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    torch.save(sd15_parts.unet.state_dict(), folder / "unet" / "diffusion_pytorch_model.bin")
    with pytest.raises(CoverforgeError) as err:
        load_model(str(folder))
    msg = str(err.value)
    assert "diffusion_pytorch_model.bin" in msg and "allow_pickle" in msg
    parts = load_model(str(folder), allow_pickle=True)
    assert_same_weights(parts.unet, sd15_parts.unet)


def test_index_names_components_the_loader_uses(tiny_models):
    # The loader reads the components that model_index.json lists; the tiny sd15 index must list the VAE.
    index = json.loads((tiny_models["sd15"] / "model_index.json").read_text())
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
