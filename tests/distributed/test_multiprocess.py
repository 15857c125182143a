"""Data-parallel training through Accelerate with two CPU processes (gloo).

`accelerate launch --cpu --num_processes 2` silently runs one process here; the combination that
runs two is ACCELERATE_USE_CPU=true with --multi_gpu.
"""

import json
import os
import subprocess
import sys

import pytest

from coverforge.data.layout import load_records


@pytest.mark.slow
def test_two_processes_end_with_identical_weights(tmp_path, tiny_models, colour_dataset):
    config = tmp_path / "ddp.toml"
    config.write_text(f"""
[model]
path = "{tiny_models['sd15']}"
[data]
dataset = "{colour_dataset}"
resolution = 64
cache_dir = "{tmp_path / 'cache'}"
[lora]
rank = 4
alpha = 4.0
[train]
recipe = "lora"
train_text_encoder = true
max_steps = 3
batch_size = 2
checkpoint_every = 100
log_every = 1
""")
    run = tmp_path / "run"
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
           "-m", "coverforge", "train", str(config), "--out", str(run), "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = [json.loads((run / "logs" / f"process-{r}.json").read_text()) for r in (0, 1)]
    assert [s["processes"] for s in summaries] == [2, 2]
    assert summaries[0]["weights_sha256"] == summaries[1]["weights_sha256"]
    assert all(s["step"] == 3 for s in summaries)
    # The global batch is the sum of the local ones, and the processes read disjoint batches.
    assert summaries[0]["global_images"] == summaries[0]["local_images"] + summaries[1]["local_images"] == 3 * 2 * 2
    assert (run / "final" / "lora" / "pytorch_lora_weights.safetensors").exists()
    # Each process encoded its own share of the latents into its own shard; the text encoder
    # trains, so there is no text cache.
    [latents] = (tmp_path / "cache").glob("latents-*")
    assert sorted(p.name[:2] for p in latents.glob("*.safetensors")) == ["p0", "p1"]
    assert not list((tmp_path / "cache").glob("text-*"))


def test_processes_read_disjoint_batches(colour_dataset):
    from coverforge.training.dataset import BucketSampler, CoverDataset

    ds = CoverDataset(load_records(colour_dataset, "train"), 64, buckets=True, step=8)
    one = BucketSampler(ds.buckets, 2, seed=3, rank=0, world=1).epoch_batches(0)
    r0 = BucketSampler(ds.buckets, 2, seed=3, rank=0, world=2).epoch_batches(0)
    r1 = BucketSampler(ds.buckets, 2, seed=3, rank=1, world=2).epoch_batches(0)
    assert r0 + r1 and not set(map(tuple, r0)) & set(map(tuple, r1))
    assert sorted(map(tuple, r0 + r1)) == sorted(map(tuple, one[: len(r0) + len(r1)]))
    for batch in one:
        assert len({ds.buckets[i] for i in batch}) == 1  # every batch from one bucket
