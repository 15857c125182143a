"""Latent and text-embedding caches (issue 6): same numbers as encoding on the fly, exact
invalidation, unpadded storage, only latents when a text encoder trains, `coverforge cache`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from PIL import Image
from safetensors import safe_open

from coverforge.cache.build import build_caches, cache_root
from coverforge.cache.keys import prompt_key
from coverforge.models.latent_codec import LatentCodec
from coverforge.cli.main import main
from coverforge.config import config_from_dict
from coverforge.data.layout import load_records
from coverforge.models.loading import load_model
from coverforge.text.chunking import WINDOW
from coverforge.text.conditioning import TextConditioner
from coverforge.training import loop
from coverforge.training.inputs import cache_for_config, make_dataset
from conftest import write_colour_dataset

BLURB = ("She crossed the salt flats at night with a stolen map, a brother who would not speak, and a debt owed to "
         "the lighthouse keepers of the northern coast. ")


def long_prompt(title: str, sentences: int) -> str:
    return f'Book cover. Title: "{title}". Genres: fantasy. ' + BLURB * sentences


@pytest.fixture
def dataset(tmp_path) -> Path:
    """The colour covers with prompts of 1 to 4 chunks, so batches need padding."""
    root = write_colour_dataset(tmp_path / "ds", n_per_colour=2)
    meta = root / "train" / "metadata.jsonl"
    rows = [json.loads(line) for line in meta.read_text().splitlines()]
    for i, row in enumerate(rows):
        row["text"] = long_prompt(row["file_name"], sentences=3 * (i % 4))
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def config(tiny_models, dataset, family="sd15", **train):
    return config_from_dict({
        "model": {"path": str(tiny_models[family])},
        "data": {"dataset": str(dataset), "resolution": 32, "buckets": True, "caption_dropout": 0.25},
        "train": {"recipe": "lora", "batch_size": 4, "lr_unet": 1e-3, "log_every": 1, "max_steps": 3, "checkpoint_every": 100, **train},
        "lora": {"rank": 4, "alpha": 4},
    })


def build(cfg, family_parts=None, text_frozen=True, prune=False):
    parts = family_parts or load_model(cfg.model.path)
    for m in (parts.vae, *parts.text_encoders):
        m.requires_grad_(False).eval()
    dataset = make_dataset(cfg, parts, load_records(cfg.data.dataset))
    conditioner = TextConditioner.from_parts(parts, cfg.text)
    cached, report = build_caches(cfg, LatentCodec.for_parts(parts), conditioner, dataset, Accelerator(cpu=True), text_frozen, progress=False, prune=prune)
    return parts, dataset, conditioner, cached, report


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_cached_conditioning_equals_live_encoding(tiny_models, dataset, family):
    cfg = config(tiny_models, dataset, family)
    _, ds, conditioner, cached, _ = build(cfg)
    prompts = [r["text"] for r in ds.records[:6]] + [""]
    with torch.no_grad():
        live = conditioner.encode(prompts)
    from_cache = cached.encode(prompts)
    assert from_cache.n_chunks == live.n_chunks >= 4
    assert from_cache.hidden.shape == live.hidden.shape
    torch.testing.assert_close(from_cache.hidden, live.hidden, rtol=1e-5, atol=1e-6)
    if family == "sdxl":
        torch.testing.assert_close(from_cache.pooled, live.pooled, rtol=1e-5, atol=1e-6)
    else:
        assert from_cache.pooled is None and live.pooled is None


def test_text_entries_are_stored_unpadded(tiny_models, dataset):
    cfg = config(tiny_models, dataset)
    _, ds, conditioner, cached, _ = build(cfg)
    for rec in ds.records[:4]:
        n = len(conditioner.chunk([rec["text"]])[0][0].chunks)
        assert cached.store.get(prompt_key(rec["text"]))["hidden"].shape == (n * WINDOW, 32)
    counts = {len(conditioner.chunk([r["text"]])[0][0].chunks) for r in ds.records}
    assert 1 in counts and len(counts) >= 3


def test_cached_latents_draw_what_encoding_draws(tiny_models, dataset):
    cfg = config(tiny_models, dataset)
    parts, ds, _, _, _ = build(cfg)
    items = ds.load_batch([0, 1], decode_only=True)
    vae = parts.vae
    with torch.no_grad():
        live = vae.encode(torch.stack([i["pixels"] for i in items])).latent_dist.sample(generator=torch.Generator().manual_seed(3))
    posteriors = torch.stack([ds[i]["posterior"] for i in (0, 1)])
    cached = LatentCodec.for_parts(parts).latents(posteriors, torch.Generator().manual_seed(3)) / vae.config.scaling_factor
    torch.testing.assert_close(cached, live, rtol=1e-5, atol=1e-6)
    assert "pixels" not in ds[0]  # with the cache attached, training never opens the image
    assert torch.equal(ds[0]["sizes"], items[0]["sizes"])


def test_training_with_caches_equals_training_without(tiny_models, dataset, tmp_path):
    runs = {}
    for cache in (False, True):
        cfg = config(tiny_models, dataset, "sdxl")
        cfg.run.cache = cache
        runs[cache] = loop.train(cfg, tmp_path / f"run-{cache}", progress=False)
    np.testing.assert_allclose(runs[True].losses, runs[False].losses, rtol=1e-4)
    assert (cache_root(cfg) / "").is_dir() and len(list(cache_root(cfg).glob("latents-*"))) == 1
    assert len(list(cache_root(cfg).glob("text-*"))) == 1


def test_a_trained_text_encoder_caches_only_latents(tiny_models, dataset, tmp_path, monkeypatch):
    # ... and keeps each prompt's token windows in memory: chunked once, the same losses.
    from collections import Counter

    import coverforge.text.conditioning as conditioning

    calls = []
    chunk_prompt = conditioning.chunk_prompt
    monkeypatch.setattr(conditioning, "chunk_prompt", lambda tok, text, limit: calls.append(text) or chunk_prompt(tok, text, limit))
    losses, most_chunked = {}, {}
    for cache in (True, False):
        calls.clear()
        cfg = config(tiny_models, dataset, train_text_encoder=True, lr_text_encoder=1e-3, max_steps=6)
        cfg.run.cache, cfg.run.cache_dir = cache, str(tmp_path / "cache")
        losses[cache] = loop.train(cfg, tmp_path / f"run-{cache}", progress=False).losses
        most_chunked[cache] = max(Counter(calls).values())
    assert [p.name.split("-")[0] for p in (tmp_path / "cache").iterdir() if p.is_dir()] == ["latents"]
    assert most_chunked[True] == 1 < most_chunked[False]  # 24 examples of 8 covers: prompts repeat
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)


def test_changes_recompute_exactly_the_affected_entries(tiny_models, dataset, tmp_path):
    cfg = config(tiny_models, dataset)
    _, _, _, _, first = build(cfg)
    n = len(load_records(dataset))
    assert first.kinds["latents"]["computed"] == n and first.kinds["text"]["computed"] == len({r["text"] for r in load_records(dataset)}) + 1

    _, _, _, _, again = build(cfg)
    assert again.kinds["latents"]["computed"] == 0 and again.kinds["text"]["computed"] == 0

    # One cover replaced, one prompt edited: one latent and one text embedding are recomputed.
    meta = dataset / "train" / "metadata.jsonl"
    rows = [json.loads(line) for line in meta.read_text().splitlines()]
    Image.new("RGB", (64, 96), (10, 200, 200)).save(dataset / "train" / rows[0]["file_name"])
    rows[1]["text"] += " A new last sentence."
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, _, _, _, edited = build(cfg)
    assert edited.kinds["latents"]["computed"] == 1 and edited.kinds["text"]["computed"] == 1

    # A text setting changes the embeddings, not the latents.
    cfg.text.clip_skip = 1
    _, _, _, _, skipped = build(cfg)
    assert skipped.kinds["latents"]["computed"] == 0 and skipped.kinds["text"]["computed"] == skipped.kinds["text"]["entries"]

    # Another model (other weights): everything recomputed, in new folders.
    other = load_model(tiny_models["sd15"])
    with torch.no_grad():
        next(other.vae.parameters()).add_(0.01)
        next(other.text_encoder.parameters()).add_(0.01)
    _, _, _, _, moved = build(cfg, other)
    assert moved.kinds["latents"]["computed"] == n and moved.kinds["text"]["folder"] != skipped.kinds["text"]["folder"]
    assert len(list(cache_root(cfg).glob("latents-*"))) == 2


def test_prune_drops_entries_no_longer_used(tiny_models, dataset):
    cfg = config(tiny_models, dataset)
    _, _, _, cached, _ = build(cfg)
    meta = dataset / "train" / "metadata.jsonl"
    rows = [json.loads(line) for line in meta.read_text().splitlines()]
    old_prompt = rows[2]["text"]
    rows[2]["text"] = "A different prompt."
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, _, _, kept, _ = build(cfg)
    assert prompt_key(old_prompt) in kept.store  # stale but still there
    _, _, _, pruned, _ = build(cfg, prune=True)
    assert prompt_key(old_prompt) not in pruned.store and prompt_key("A different prompt.") in pruned.store
    assert len(list(pruned.store.folder.glob("*.safetensors"))) == 1


def test_shards_are_safetensors_with_one_entry_per_key(tiny_models, dataset):
    cfg = config(tiny_models, dataset)
    _, ds, _, cached, report = build(cfg)
    shards = list(Path(report.kinds["latents"]["folder"]).glob("*.safetensors"))
    assert len(shards) == 1 and shards[0].name.startswith("p0-")
    with safe_open(shards[0], framework="pt") as f:
        names = list(f.keys())
    assert len(names) == 2 * len(ds) and all(n.endswith(("/posterior", "/sizes")) for n in names)
    assert not list(Path(report.kinds["latents"]["folder"]).glob(".tmp-*"))


def test_a_cover_that_does_not_decode_is_skipped_and_counted(tiny_models, dataset, tmp_path):
    cfg = config(tiny_models, dataset)
    rows = load_records(dataset)
    Path(rows[0]["path"]).write_bytes(b"not an image any more")
    result = loop.train(cfg, tmp_path / "run", progress=False)
    assert result.step == 3
    summary = json.loads((tmp_path / "run" / "logs" / "process-0.json").read_text())
    assert rows[0]["path"] in summary["failed_images"]


def test_cache_command_then_training_computes_nothing(tiny_models, dataset, tmp_path, capsys):
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text(f'[model]\npath = "{tiny_models["sdxl"]}"\n[data]\ndataset = "{dataset}"\nresolution = 32\n'
                        '[train]\nbatch_size = 4\nmax_steps = 2\nlog_with = "none"\n')
    assert main(["cache", str(cfg_file), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "latents: 8 entries (8 computed now" in out and "text: " in out
    assert main(["cache", str(cfg_file), "--no-progress"]) == 0
    assert "(0 computed now" in capsys.readouterr().out
    assert main(["train", str(cfg_file), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "latents: 8 entries (0 computed now" in out and "text: 9 entries (0 computed now" in out


def test_an_unwritable_cache_folder_is_one_clear_error(tiny_models, dataset, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = config(tiny_models, dataset)
    cfg.run.cache_dir = str(blocker / "cache")
    with pytest.raises(Exception, match="cannot write the cache folder .*run.cache_dir"):
        cache_for_config(cfg, progress=False)


def test_worker_processes_load_the_same_batches(tiny_models, dataset, tmp_path):
    """run.num_workers loads batches in background processes: same losses, failures still counted."""
    rows = load_records(dataset)
    Path(rows[3]["path"]).write_bytes(b"broken")
    losses = {}
    for workers in (0, 2):
        cfg = config(tiny_models, dataset, max_steps=4)
        cfg.run.cache, cfg.run.num_workers = False, workers
        losses[workers] = loop.train(cfg, tmp_path / f"run-{workers}", progress=False).losses
        summary = json.loads((tmp_path / f"run-{workers}" / "logs" / "process-0.json").read_text())
        assert summary["failed_images"].count(rows[3]["path"]) >= 1
    assert losses[0] == losses[2]
