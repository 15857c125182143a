"""Offloading (run.offload_text_encoder, run.offload_vae): which frozen parts leave the device, that
nothing of them stays behind (bitsandbytes' side state included), and that validation draws the
same images as a run that keeps them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from coverforge.config import config_from_dict
from coverforge.models.loading import load_model
from coverforge.models.quantize import quantize_module, tensor_bytes
from coverforge.training import loop
from coverforge.training.logs import cuda_peak
from coverforge.training.offload import Offload, idle_parts

FAMILIES = ("qwen-image", "z-image")
CPU = torch.device("cpu")


def config(model, dataset, tmp_path, train_text=False, **run):
    return config_from_dict({
        "model": {"path": str(model)},
        "data": {"dataset": str(dataset), "resolution": 32, "buckets": False},
        "train": {"recipe": "lora", "max_steps": 2, "batch_size": 2, "train_text_encoder": train_text, "lr_unet": 1e-2},
        "lora": {"rank": 4, "alpha": 4},
        "run": {"log_with": "none", "cache_dir": str(tmp_path.parent / "cache"), "checkpoint_every": 1000, **run},
        "sample": {"steps": 2, "width": 32, "height": 32, "guidance_scale": 3.0, "prompts": ["a red book"], "seeds": [0, 1]},
    })


def test_idle_parts_are_the_cached_frozen_ones(memory_models, colour_dataset, tmp_path):
    parts = load_model(str(memory_models["qwen-image"]))
    cfg = config("m", colour_dataset, tmp_path)
    assert set(idle_parts(parts, cfg, text_cached=True, latents_cached=True)) == {"text_encoder", "vae"}  # both on by default
    assert set(idle_parts(parts, config("m", colour_dataset, tmp_path, offload_vae=False), True, True)) == {"text_encoder"}
    assert set(idle_parts(parts, cfg, text_cached=False, latents_cached=True)) == {"vae"}  # the encoder encodes each step
    assert set(idle_parts(parts, cfg, True, latents_cached=False)) == {"text_encoder"}  # the VAE encodes each step
    assert set(idle_parts(parts, config("m", colour_dataset, tmp_path, offload_text_encoder=False, offload_vae=False), True, True)) == set()


def test_parking_leaves_nothing_on_the_device(memory_models):
    """Parked on the meta device (the one other device a CPU has), every tensor leaves the CPU.
    (bitsandbytes' weights cannot become meta tensors: the quantised moves are the CUDA test's.)"""
    from coverforge.config import TextConfig
    from coverforge.text.conditioners import make_conditioner

    parts = load_model(str(memory_models["z-image"]))
    make_conditioner("z-image", [parts.tokenizer], [parts.text_encoder], TextConfig()).encode(["a red book"])
    assert tensor_bytes(parts.text_encoder, CPU) > 0
    Offload({"text_encoder": parts.text_encoder, "vae": parts.vae}, CPU, park=torch.device("meta")).park()
    assert tensor_bytes(parts.text_encoder, CPU) == 0 and tensor_bytes(parts.vae, CPU) == 0
    assert tensor_bytes(parts.text_encoder, torch.device("meta")) > 0


def train_recording(cfg, run: Path):
    """Train; record where the offloaded parts were during the steps and during validation."""
    seen = {"steps": [], "validation": []}
    real_loss, real_sample = loop._loss, loop.sample_validation

    def where(s):
        return {name: next(m.parameters()).device.type for name, m in s.offload.modules.items()}

    def loss(s, batch):
        seen["steps"].append(where(s))
        seen["state"] = s
        return real_loss(s, batch)

    def sample(gen, c, out_dir, step):
        seen["validation"].append(where(seen["state"]))
        return real_sample(gen, c, out_dir, step)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "_loss", loss)
        mp.setattr(loop, "sample_validation", sample)
        loop.train(cfg, run, progress=False)
    return seen


@pytest.mark.parametrize("family", FAMILIES)
def test_validation_images_are_those_of_a_run_without_offloading(memory_models, colour_dataset, tmp_path, family):
    kept = config(memory_models[family], colour_dataset, tmp_path, offload_text_encoder=False)
    parked = config(memory_models[family], colour_dataset, tmp_path, offload_vae=True)
    train_recording(kept, tmp_path / "kept")
    seen = train_recording(parked, tmp_path / "parked")
    assert seen["steps"] and all(set(s) == {"text_encoder", "vae"} and set(s.values()) == {"cpu"} for s in seen["steps"])
    assert seen["validation"] == [{"text_encoder": "cpu", "vae": "cpu"}]  # restored to the (CPU) training device
    images = [sorted((run / "samples").glob("*.png")) for run in (tmp_path / "kept", tmp_path / "parked")]
    assert images[0] and [p.name for p in images[0]] == [p.name for p in images[1]]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(*images))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the parts leave the GPU during the steps")
@pytest.mark.parametrize("kind", ["none", "int8", "nf4"])
def test_cuda_offload_frees_the_encoder_during_steps_and_restores_it(memory_models, kind):
    cuda = torch.device("cuda")
    parts = load_model(str(memory_models["qwen-image"]))
    if kind != "none":
        quantize_module(parts.text_encoder, kind, cuda, torch.bfloat16)
    parts.text_encoder.to(cuda)
    from coverforge.config import TextConfig
    from coverforge.text.conditioners import make_conditioner

    cond = make_conditioner("qwen-image", [parts.tokenizer], [parts.text_encoder], TextConfig())
    before = cond.encode(["a red book"]).hidden
    offload = Offload({"text_encoder": parts.text_encoder}, cuda)
    offload.park()
    assert tensor_bytes(parts.text_encoder, cuda) == 0
    with offload.restored():
        assert tensor_bytes(parts.text_encoder, CPU) == 0
        torch.testing.assert_close(cond.encode(["a red book"]).hidden, before)
    assert tensor_bytes(parts.text_encoder, cuda) == 0


def test_process_summary_reports_no_cuda_peaks_off_cuda(memory_models, colour_dataset, tmp_path):
    assert cuda_peak("cpu") is None
    loop.train(config(memory_models["z-image"], colour_dataset, tmp_path), tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "logs" / "process-0.json").read_text())["cuda_peak"] == {}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: peak memory per phase is read from the CUDA allocator")
def test_process_summary_reports_cuda_peaks_per_phase(memory_models, colour_dataset, tmp_path):
    loop.train(config(memory_models["z-image"], colour_dataset, tmp_path), tmp_path / "run", progress=False)
    peaks = json.loads((tmp_path / "run" / "logs" / "process-0.json").read_text())["cuda_peak"]
    assert set(peaks) == {"setup", "steps"}
    for phase in peaks.values():
        assert 0 <= phase["allocated_mib"] <= phase["reserved_mib"] and phase["reserved_mib"] > 0
