"""Exact resume, atomic checkpoints, rotation, refused config changes, non-finite loss (issue 7)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from coverforge.config import config_from_dict
from coverforge.errors import CoverforgeError
from coverforge.training import checkpoint as ckpt
from coverforge.training import loop
from scratch_kit import TINY_SCRATCH


def lora_config(tiny_models, dataset, **train):
    # batch 4 over 16 training images: 4 batches an epoch, so 6 steps cross an epoch boundary.
    return config_from_dict({
        "model": {"path": str(tiny_models["sd15"])},
        "data": {"dataset": str(dataset), "resolution": 32, "buckets": False, "caption_dropout": 0.25},
        "train": {"recipe": "lora", "batch_size": 4, "train_text_encoder": True, "lr_unet": 1e-3,
                  "lr_text_encoder": 1e-3, "noise_offset": 0.05, "log_every": 1, **train},
        "lora": {"rank": 4, "alpha": 4},
    })


def metrics(run: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in rows}


def final_lora(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "final" / "lora" / "pytorch_lora_weights.safetensors")


def assert_same_tensors(a: dict, b: dict) -> None:
    assert set(a) == set(b) and a
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == [], f"{len(different)} tensors differ, e.g. {different[:3]}"


def test_resumed_training_equals_uninterrupted_training(tiny_models, colour_dataset, tmp_path):
    whole = tmp_path / "whole"
    loop.train(lora_config(tiny_models, colour_dataset, max_steps=6, checkpoint_every=3), whole, progress=False)

    split = tmp_path / "split"
    first = loop.train(lora_config(tiny_models, colour_dataset, max_steps=3, checkpoint_every=3), split, progress=False)
    assert first.step == 3 and ckpt.resolve_checkpoint(split, "latest").name == "step-00000003"
    second = loop.train(lora_config(tiny_models, colour_dataset, max_steps=6, checkpoint_every=3), split, resume="latest", progress=False)
    assert second.step == 6 and len(second.losses) == 3  # only steps 4..6 ran again

    assert_same_tensors(final_lora(split), final_lora(whole))
    assert_same_tensors(load_file(split / "checkpoints" / "step-00000006" / "trained.safetensors"),
                        load_file(whole / "checkpoints" / "step-00000006" / "trained.safetensors"))
    a, b = metrics(whole), metrics(split)
    assert sorted(b) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):
        assert b[step]["loss"] == a[step]["loss"], f"loss of step {step} differs after resume"
    # The first three steps were also the same run: a resumed run is not a re-seeded copy.
    assert [b[s]["loss"] for s in (1, 2, 3)] == [a[s]["loss"] for s in (1, 2, 3)]
    assert len({a[s]["loss"] for s in a}) == 6  # losses vary step to step, so equality means something


@pytest.mark.slow
def test_resume_restores_ema_and_scratch_state(tmp_path, colour_dataset):
    """Scratch recipe with EMA: EMA shadow weights and the sampler survive a resume too."""

    def cfg(steps):
        return config_from_dict({
            "model": dict(TINY_SCRATCH),
            "data": {"dataset": str(colour_dataset), "resolution": 16, "buckets": False},
            "train": {"recipe": "scratch", "batch_size": 4, "lr_unet": 1e-3, "ema_decay": 0.9, "max_steps": steps,
                      "checkpoint_every": 3, "log_every": 1},
        })

    loop.train(cfg(7), tmp_path / "whole", progress=False)
    loop.train(cfg(3), tmp_path / "split", progress=False)
    loop.train(cfg(7), tmp_path / "split", resume="latest", progress=False)
    for name in ("unet", "text_encoder"):
        (a_file,) = (tmp_path / "whole" / "final" / "model" / name).glob("*.safetensors")
        (b_file,) = (tmp_path / "split" / "final" / "model" / name).glob("*.safetensors")
        assert_same_tensors(load_file(a_file), load_file(b_file))
    a, b = metrics(tmp_path / "whole"), metrics(tmp_path / "split")
    assert [b[s]["loss"] for s in range(4, 8)] == [a[s]["loss"] for s in range(4, 8)]


@pytest.fixture(scope="module")
def rotated_run(tiny_models, colour_dataset, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("rotation") / "run"
    cfg = lora_config(tiny_models, colour_dataset, max_steps=5, checkpoint_every=1, checkpoints_total_limit=2)
    loop.train(cfg, run, progress=False)
    return run


@pytest.fixture
def run_copy(rotated_run, tmp_path) -> Path:
    return Path(shutil.copytree(rotated_run, tmp_path / "run"))


def test_rotation_keeps_the_newest_complete_checkpoints(rotated_run):
    root = rotated_run / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000004", "step-00000005"]
    assert (root / "latest").read_text().strip() == "step-00000005"
    for folder in ("step-00000004", "step-00000005"):
        names = {p.name for p in (root / folder).iterdir()}
        assert {"COMPLETE", "trained.safetensors", "state.pt", "config.toml"} <= names
    state = torch.load(root / "step-00000005" / "state.pt", weights_only=True)
    assert state["step"] == 5 and {"optimizer", "lr_schedule", "rng", "sampler"} <= set(state)
    assert len(state["rng"]) == 1 and {"python", "numpy", "torch", "noise"} <= set(state["rng"][0])  # one per process


def test_incomplete_checkpoints_are_never_resolved(run_copy):
    root = run_copy / "checkpoints"
    # A write killed before the rename: a .tmp folder without the COMPLETE marker.
    tmp = root / ".tmp-step-00000009"
    shutil.copytree(root / "step-00000005", tmp)
    (tmp / ckpt.MARKER).unlink()
    assert ckpt.resolve_checkpoint(run_copy, "latest") == root / "step-00000005"
    # Even a renamed folder without the marker, with `latest` pointing at it, is passed over.
    shutil.copytree(tmp, root / "step-00000010")
    (root / "latest").write_text("step-00000010")
    assert ckpt.resolve_checkpoint(run_copy, "latest") == root / "step-00000005"
    with pytest.raises(CoverforgeError, match="COMPLETE"):
        ckpt.resolve_checkpoint(run_copy, str(root / "step-00000010"))


def test_no_complete_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "checkpoints" / ".tmp-step-00000002").mkdir(parents=True)
    with pytest.raises(CoverforgeError, match="no complete checkpoint"):
        ckpt.resolve_checkpoint(tmp_path, "latest")


def test_resume_with_changed_config_is_refused_and_names_the_fields(run_copy, tiny_models, colour_dataset):
    cfg = lora_config(tiny_models, colour_dataset, max_steps=6, checkpoint_every=1, checkpoints_total_limit=2,
                      lr_unet=5e-4, batch_size=2)
    with pytest.raises(CoverforgeError) as err:
        loop.train(cfg, run_copy, resume="latest", progress=False)
    differs = str(err.value).split(" (only")[0]  # the fields named as different, not the rule after them
    assert "train.lr_unet" in differs and "train.batch_size" in differs
    assert "train.max_steps" not in differs  # allowed to change
    assert not (run_copy / "checkpoints" / "step-00000006").exists()


def test_resume_may_change_max_steps_and_resume_from_a_path(run_copy, tiny_models, colour_dataset):
    cfg = lora_config(tiny_models, colour_dataset, max_steps=6, checkpoint_every=1, checkpoints_total_limit=2, log_every=2)
    result = loop.train(cfg, run_copy, resume=str(run_copy / "checkpoints" / "step-00000005"), progress=False)
    assert result.step == 6 and len(result.losses) == 1
    assert ckpt.resolve_checkpoint(run_copy, "latest").name == "step-00000006"
    assert 6 in metrics(run_copy)


def test_nonfinite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tiny_models, colour_dataset, tmp_path):
    run = tmp_path / "run"
    cfg = lora_config(tiny_models, colour_dataset, max_steps=6, checkpoint_every=1, lr_unet=1e30, lr_text_encoder=1e30)
    with pytest.raises(CoverforgeError) as err:
        loop.train(cfg, run, progress=False)
    good = sorted(metrics(run)) if (run / "logs" / "metrics.jsonl").exists() else []
    bad_step = len(good) + 1
    message = str(err.value)
    assert f"at step {bad_step}" in message
    assert "learning rate" in message and "fp16" in message
    if good:
        latest = ckpt.resolve_checkpoint(run, "latest")
        assert latest.name == f"step-{good[-1]:08d}"
    assert not (run / "final").exists()


def test_nonfinite_loss_can_be_skipped(tiny_models, colour_dataset, tmp_path, monkeypatch):
    real_loss, calls = loop._loss, []

    def flaky_loss(s, batch):
        calls.append(1)
        loss = real_loss(s, batch)
        return loss * float("nan") if len(calls) == 2 else loss

    monkeypatch.setattr(loop, "_loss", flaky_loss)
    cfg = lora_config(tiny_models, colour_dataset, max_steps=3, checkpoint_every=10, on_nonfinite="skip")
    result = loop.train(cfg, tmp_path / "run", progress=False)
    assert result.step == 3 and len(calls) == 4  # one batch skipped, three steps taken
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert sorted(metrics(tmp_path / "run")) == [1, 2, 3]


def test_rotation_never_deletes_the_checkpoint_just_written(run_copy, tiny_models, colour_dataset):
    root = run_copy / "checkpoints"
    # Checkpoints of a later, abandoned attempt (e.g. a run resumed from an older checkpoint by PATH).
    for name in ("step-00000008", "step-00000009"):
        shutil.copytree(root / "step-00000005", root / name)
    cfg = lora_config(tiny_models, colour_dataset, max_steps=6, checkpoint_every=1, checkpoints_total_limit=2)
    loop.train(cfg, run_copy, resume=str(root / "step-00000005"), progress=False)
    assert (root / "step-00000006" / ckpt.MARKER).exists()
    assert ckpt.resolve_checkpoint(run_copy, "latest").name == "step-00000006"


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(run_copy, caplog):
    """Issue 23: a checkpoint damaged after it was complete is passed over, with the reason."""
    root = run_copy / "checkpoints"
    weights = root / "step-00000005" / "trained.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # a truncated copy, marker still in place
    with caplog.at_level("WARNING"):
        assert ckpt.resolve_checkpoint(run_copy, "latest") == root / "step-00000004"
    assert "step-00000005" in caplog.text and "trained.safetensors" in caplog.text


def test_a_damaged_checkpoint_named_by_path_is_one_line_without_unsafe_advice(run_copy):
    path = run_copy / "checkpoints" / "step-00000005"
    (path / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CoverforgeError) as e:
        ckpt.resolve_checkpoint(run_copy, str(path))
    assert "state.pt" in str(e.value) and "\n" not in str(e.value)
    # A checkpoint from before digests were written is only checked by reading it.
    (path / ckpt.SUMS).unlink()
    with pytest.raises(CoverforgeError) as e:
        ckpt.load_checkpoint(path)
    assert "weights_only" not in str(e.value) and "\n" not in str(e.value)
