"""Training data that cannot make a batch, plain Hugging Face imagefolders, other encodings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bad_input_kit import write_split
from coverforge.data.layout import load_records
from coverforge.errors import CoverforgeError
from coverforge.training.dataset import BucketSampler, CoverDataset
from bad_input_kit import cli, one_torch_thread, tiny_clip_dir  # noqa: F401 - fixtures


def mixed_shapes(root: Path, per_shape: int = 2) -> Path:
    """covers in three aspect ratios, per_shape of each: with batch 3 no bucket fills a batch."""
    split = root / "train"
    split.mkdir(parents=True)
    rows, rng = [], np.random.default_rng(0)
    for shape in ((64, 96), (96, 64), (64, 64)):
        for k in range(per_shape):
            name = f"{shape[0]}x{shape[1]}-{k}.png"
            Image.fromarray(rng.integers(0, 255, (shape[1], shape[0], 3), dtype=np.uint8)).save(split / name)
            rows.append({"file_name": name, "text": f"cover {name}", "width": shape[0], "height": shape[1]})
    (split / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_no_full_batch_is_the_one_line_error_with_the_fix():
    with pytest.raises(CoverforgeError) as e:  # when the sampler is made, before training starts
        BucketSampler([(64, 96), (64, 96), (96, 64), (96, 64), (64, 64), (64, 64)], batch_size=3)
    message = str(e.value)
    assert "train.batch_size" in message and "data.buckets" in message and "\n" not in message


def test_no_full_batch_through_train_is_exit_2(tmp_path, cli, tiny_models):
    data = mixed_shapes(tmp_path / "ds")
    config = tmp_path / "c.toml"
    config.write_text(f'[model]\npath = "{tiny_models["sd15"]}"\n[data]\ndataset = "{data}"\nresolution = 64\ncache = false\n'
                      '[train]\nmax_steps = 2\nbatch_size = 3\n[lora]\nrank = 4\nalpha = 4.0\n', encoding="utf-8")
    cli.fails("train", config, "--out", tmp_path / "run", mentions=("train.batch_size", "data.buckets"))


def test_plain_imagefolder_without_sizes_gets_buckets_from_the_images(tmp_path):
    split = write_split(tmp_path / "hf" / "train", 4, size=(48, 72), sizes=False)
    records = load_records(tmp_path / "hf")
    assert "width" not in records[0]
    dataset = CoverDataset(records, 64, buckets=True, step=8)
    assert len(set(dataset.buckets)) == 1 and dataset.buckets[0][1] > dataset.buckets[0][0]  # portrait bucket, from the pixels
    assert split.is_dir()


def test_plain_imagefolder_trains(tmp_path, cli, tiny_models):
    write_split(tmp_path / "hf" / "train", 4, size=(48, 72), sizes=False)
    config = tmp_path / "c.toml"
    config.write_text(f'[model]\npath = "{tiny_models["sd15"]}"\n[data]\ndataset = "{tmp_path / "hf"}"\nresolution = 64\n'
                      '[train]\nmax_steps = 1\nbatch_size = 2\n[lora]\nrank = 4\nalpha = 4.0\n', encoding="utf-8")
    code, _, err = cli("train", config, "--out", tmp_path / "run")
    assert code == 0, err
    assert (tmp_path / "run" / "final" / "lora").is_dir()


def test_size_that_is_not_a_number_is_one_line(tmp_path):
    split = write_split(tmp_path / "ds" / "train", 2)
    meta = split / "metadata.jsonl"
    rows = [json.loads(line) for line in meta.read_text().splitlines()]
    rows[1]["width"] = "wide"
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(CoverforgeError, match=r"metadata.jsonl.*width") as e:
        CoverDataset(load_records(tmp_path / "ds"), 64, buckets=True, step=8)
    assert "\n" not in str(e.value)


def test_metadata_in_latin1_is_read_with_a_warning(tmp_path, caplog):
    split = write_split(tmp_path / "ds" / "train", 2)
    meta = split / "metadata.jsonl"
    meta.write_bytes(meta.read_text(encoding="utf-8").replace("a fantasy", "une fée").encode("cp1252"))
    with caplog.at_level(logging.WARNING):
        records = load_records(tmp_path / "ds")
    assert records[0]["text"].startswith("une fée") and "Windows-1252" in caplog.text


def test_image_outside_the_split_is_refused(tmp_path):
    split = write_split(tmp_path / "ds" / "train", 2)
    outside = write_split(tmp_path / "elsewhere", 1)
    (split / "link.png").symlink_to(outside / "0000.png")
    with open(split / "metadata.jsonl", "a") as f:
        f.write(json.dumps({"file_name": "link.png", "text": "x"}) + "\n")
    with pytest.raises(CoverforgeError, match="outside"):
        load_records(tmp_path / "ds")


def test_no_full_batch_fails_before_the_caches_are_built(tmp_path, cli, tiny_models):
    """Caching takes minutes on a real catalogue: a batch no bucket fills is found before it."""
    data = mixed_shapes(tmp_path / "ds")
    config = tmp_path / "c.toml"
    config.write_text(f'[model]\npath = "{tiny_models["sd15"]}"\n[data]\ndataset = "{data}"\nresolution = 64\ncache = true\n'
                      f'cache_dir = "{tmp_path / "cache"}"\n[train]\nmax_steps = 2\nbatch_size = 3\n[lora]\nrank = 4\nalpha = 4.0\n',
                      encoding="utf-8")
    cli.fails("train", config, "--out", tmp_path / "run", mentions=("train.batch_size", "data.buckets"))
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.safetensors"))


def test_sample_size_the_model_cannot_draw_fails_before_the_first_step(tmp_path, cli, tiny_models):
    """sample.width must divide by the loaded model's VAE factor times its UNet's downsampling."""
    from coverforge.models.loading import load_model
    from coverforge.models.grid import size_multiple

    parts = load_model(str(tiny_models["sd15"]))
    m = size_multiple(parts)
    assert m > 8  # else every multiple of 8 (config's own check) would be drawable
    split = write_split(tmp_path / "ds" / "train", 4, size=(64, 64))
    assert split.is_dir()
    config = tmp_path / "c.toml"
    config.write_text(f'[model]\npath = "{tiny_models["sd15"]}"\n[data]\ndataset = "{tmp_path / "ds"}"\nresolution = 64\n'
                      f'[train]\nmax_steps = 2\nbatch_size = 2\ncheckpoint_every = 1\n[lora]\nrank = 4\nalpha = 4.0\n'
                      f'[sample]\nwidth = {m + 8}\n', encoding="utf-8")
    cli.fails("train", config, "--out", tmp_path / "run", mentions=("sample.width", str(m)))
    assert not (tmp_path / "run" / "checkpoints").exists()
