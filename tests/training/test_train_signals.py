"""A real `coverforge train` process killed with SIGKILL resumes to the uninterrupted run; SIGTERM
checkpoints and exits cleanly with a resume hint (issue 7)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w
import torch
from safetensors.torch import load_file

from coverforge.config import load_config
from coverforge.training import checkpoint as ckpt
from coverforge.training import loop

STARTUP_TIMEOUT_S = 240


def write_config(path: Path, tiny_models, dataset) -> Path:
    # Constant rate, no warmup: max_steps (changed on resume) must not change the schedule.
    values = {
        "model": {"path": str(tiny_models["sd15"])},
        "data": {"dataset": str(dataset), "resolution": 32, "buckets": False},
        "train": {"recipe": "lora", "max_steps": 100000, "batch_size": 4, "lr_unet": 1e-3, "train_text_encoder": True,
                  "lr_schedule": "constant", "warmup_ratio": 0.0, "checkpoint_every": 2, "log_every": 1},
        "lora": {"rank": 4, "alpha": 4},
    }
    path.write_text(tomli_w.dumps(values))
    return path


def start_training(config: Path, run: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "coverforge", "train", str(config), "--out", str(run), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def wait_for_checkpoint(proc: subprocess.Popen, run: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not (run / "checkpoints" / "latest").exists():
        if proc.poll() is not None:
            pytest.fail(f"training exited early ({proc.returncode}):\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no checkpoint within the startup timeout")
        time.sleep(0.05)


def losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {r["step"]: r["loss"] for r in rows}


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted_run(tiny_models, colour_dataset, tmp_path):
    config = write_config(tmp_path / "run.toml", tiny_models, colour_dataset)
    run = tmp_path / "killed"
    proc = start_training(config, run)
    wait_for_checkpoint(proc, run)
    time.sleep(random.uniform(0.0, 0.5))  # a random moment after the checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    latest = ckpt.resolve_checkpoint(run, "latest")
    resumed_from = int((latest / ckpt.MARKER).read_text())
    target = resumed_from + 3
    loop.train(load_config(config, [f"train.max_steps={target}"]), run, resume="latest", progress=False)

    whole = tmp_path / "whole"
    loop.train(load_config(config, [f"train.max_steps={target}"]), whole, progress=False)

    a = load_file(whole / "final" / "lora" / "pytorch_lora_weights.safetensors")
    b = load_file(run / "final" / "lora" / "pytorch_lora_weights.safetensors")
    assert set(a) == set(b)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    la, lb = losses(whole), losses(run)
    # The killed process may have logged steps past its checkpoint; the resumed ones come last.
    for step in range(resumed_from + 1, target + 1):
        assert lb[step] == la[step], f"loss of step {step} differs after SIGKILL + resume"


@pytest.mark.slow
def test_sigterm_checkpoints_and_exits_cleanly(tiny_models, colour_dataset, tmp_path):
    config = write_config(tmp_path / "run.toml", tiny_models, colour_dataset)
    run = tmp_path / "run"
    proc = start_training(config, run)
    wait_for_checkpoint(proc, run)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "--resume latest" in out
    stopped = [line for line in out.splitlines() if line.startswith("stopped by SIGTERM at step ")]
    assert stopped, out
    step = int(stopped[0].split("at step ")[1].split(";")[0])
    latest = ckpt.resolve_checkpoint(run, "latest")
    assert latest.name == f"step-{step:08d}", "the step the process stopped at was not checkpointed"
    assert max(losses(run)) == step
    assert not (run / "final").exists()  # stopped, not finished
