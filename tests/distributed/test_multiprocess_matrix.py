"""Two CPU processes (gloo) train exactly what one process trains with the same global batch
(issue 17): trained text encoders whose last layers the conditioning never reads (SD 1.x with
clip_skip, SDXL's penultimate layer, a full fine-tune of SDXL's text encoder 1) and a scratch run
with EMA; the LR schedule at every step; and a SIGKILLed 2-process run resumes bit for bit.

One process with grad_accum=2 and batch B sees the same micro-batches, in the same order, as two
processes with batch B (the sampler deals global batches round-robin, and each micro-batch's noise
is seeded by its place in the global order), so the maths says: identical learning rates, losses
equal up to float summation order, and final weights within float tolerance.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w
import torch
from safetensors.torch import load_file

from coverforge.config import config_from_dict
from coverforge.training.loop import train

pytestmark = pytest.mark.slow
PORT = iter(range(29531, 29600))


def _values(case: str, tiny_models, dataset, tmp_path: Path, flow_models=None) -> dict:
    train_cfg = {"max_steps": 3, "batch_size": 2, "checkpoint_every": 100, "log_every": 1, "lr_schedule": "cosine",
                 "warmup_ratio": 0.34, "lr_unet": 1e-3, "lr_text_encoder": 1e-3, "lr_text_encoder_2": 1e-3}
    values = {"data": {"dataset": str(dataset), "resolution": 32, "buckets": False, "cache_dir": str(tmp_path / "cache")},
              "lora": {"rank": 4, "alpha": 4}, "train": train_cfg}
    if case == "sd15-clip-skip":
        values["model"] = {"path": str(tiny_models["sd15"])}
        values["text"] = {"clip_skip": 1}
        train_cfg.update(recipe="lora", train_text_encoder=True)
    elif case == "sdxl-lora-both-encoders":
        values["model"] = {"path": str(tiny_models["sdxl"])}
        train_cfg.update(recipe="lora", train_text_encoder=True, train_text_encoder_2=True)
    elif case == "sdxl-full-te1":
        values["model"] = {"path": str(tiny_models["sdxl"])}
        train_cfg.update(recipe="full", train_unet=False, train_text_encoder=True)
    elif case in ("qwen-image-lora-te", "z-image-full-te"):
        # The flow families: Qwen2.5-VL read at its last layer (every layer trains), Qwen3 at its
        # penultimate one (the last layer must stay out of DDP's reducer).
        family = case.split("-lora")[0].split("-full")[0]
        values["model"] = {"path": str(flow_models[family])}
        values["data"]["resolution"] = 32
        train_cfg.update(recipe="lora" if "lora" in case else "full", train_text_encoder=True)
    elif case == "scratch-ema":
        values["model"] = {"scratch_channels": [16, 32], "scratch_sample_size": 16, "scratch_cross_attention_dim": 32}
        values["data"]["resolution"] = 16
        train_cfg.update(recipe="scratch", ema_decay=0.5)
    return values


def launch(config: Path, run: Path, extra: list[str] = ()) -> subprocess.Popen:
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(next(PORT)),
           "-m", "coverforge", "train", str(config), "--out", str(run), "--no-progress", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: int = 400) -> None:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]


def metrics(run: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {r["step"]: r for r in rows}


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    files = sorted((run / "final").rglob("*.safetensors"))
    out = {}
    for f in files:
        out.update({f"{f.relative_to(run)}:{k}": v for k, v in load_file(f).items()})
    return out


@pytest.mark.parametrize("case", ["sd15-clip-skip", "sdxl-lora-both-encoders", "sdxl-full-te1", "scratch-ema", "qwen-image-lora-te",
                                  "z-image-full-te"])
def test_two_processes_train_what_one_process_trains(case, tmp_path, tiny_models, flow_models, colour_dataset):
    values = _values(case, tiny_models, colour_dataset, tmp_path, flow_models)
    config = tmp_path / "two.toml"
    config.write_text(tomli_w.dumps(values))
    two = tmp_path / "two"
    finish(launch(config, two))
    summaries = [json.loads((two / "logs" / f"process-{r}.json").read_text()) for r in (0, 1)]
    assert summaries[0]["weights_sha256"] == summaries[1]["weights_sha256"]
    assert all(s["step"] == 3 for s in summaries)

    # One process, the same global batch as two micro-batches.
    values["train"] = {**values["train"], "grad_accum": 2}
    values["data"]["cache_dir"] = str(tmp_path / "cache-one")
    one = tmp_path / "one"
    train(config_from_dict(values), one, progress=False)

    m2, m1 = metrics(two), metrics(one)
    assert sorted(m2) == sorted(m1) == [1, 2, 3]
    for step in m1:
        lrs = {k: v for k, v in m1[step].items() if k.startswith("lr/")}
        assert lrs and lrs == {k: m2[step][k] for k in lrs}, f"step {step}: LR differs"
        assert m2[step]["loss"] == pytest.approx(m1[step]["loss"], rel=1e-4, abs=1e-6)
    w2, w1 = final_weights(two), final_weights(one)
    assert w2.keys() == w1.keys() and w1
    # Summation order differs (all-reduce vs accumulation). Adam turns rounding noise into full
    # steps where a gradient is ~0 by construction (a conv bias right before a GroupNorm), so a
    # few elements may differ by up to Adam's bound (lr per step); everything else matches closely.
    lr, steps = values["train"]["lr_unet"], values["train"]["max_steps"]
    far = total = 0
    for k in w1:
        diff = (w2[k].float() - w1[k].float()).abs()
        assert diff.max() <= 2 * lr * steps + 1e-6, k
        far += int((diff > 1e-5 + 1e-4 * w1[k].float().abs()).sum())
        total += diff.numel()
    assert far <= 0.01 * total, f"{far} of {total} weights differ beyond float tolerance"


def test_two_processes_resume_after_sigkill_bit_for_bit(tmp_path, tiny_models, colour_dataset):
    values = _values("sd15-clip-skip", tiny_models, colour_dataset, tmp_path)
    # LoRA dropout draws from each process's own torch generator: after a resume each process
    # must continue its own stream, not process 0's.
    values["lora"]["dropout"] = 0.25
    values["train"].update(max_steps=6, checkpoint_every=2, lr_schedule="constant", warmup_ratio=0.0)
    config = tmp_path / "resume.toml"
    config.write_text(tomli_w.dumps(values))

    whole = tmp_path / "whole"
    finish(launch(config, whole))

    cut = tmp_path / "cut"
    proc = launch(config, cut)
    deadline = time.monotonic() + 400
    while not (cut / "checkpoints" / "step-00000002" / "COMPLETE").exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cut / "final").exists(), "the run finished before the kill: the test would prove nothing"
    finish(launch(config, cut, ["--resume", "latest"]))

    a, b = final_weights(whole), final_weights(cut)
    assert a.keys() == b.keys() and a
    assert all(torch.equal(a[k], b[k]) for k in a)
