"""Tiny models and image folders built in code for the evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def tiny_cnn(seed: int = 0, dim: int = 8) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(8, dim, 3, stride=2),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    )


def random_cover(rng: np.random.Generator, size=(48, 72), gray: bool = False) -> Image.Image:
    base = rng.uniform(0, 255, 3)
    noise = rng.normal(0, 40, (size[1], size[0], 3))
    arr = np.clip(base + noise, 0, 255).astype(np.uint8)
    if gray:
        arr[...] = arr.mean(axis=2, keepdims=True).astype(np.uint8)
    return Image.fromarray(arr)


GENRES = ["fantasy", "romance", "thriller"]


def make_split(folder: Path, n: int, seed: int = 0, gray_every: int = 0) -> Path:
    """An HF imagefolder split of n random covers over three genres; every k-th image grayscale."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        genre = GENRES[i % len(GENRES)]
        gray = bool(gray_every) and i % gray_every == 0
        random_cover(rng, gray=gray).save(folder / f"{i:04d}.png")
        rows.append({"file_name": f"{i:04d}.png", "text": f"a {genre} book cover number {i}", "genres": [genre], "primary_genre": genre})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def build_tiny_clip(seed: int = 0):
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(seed)
    return CLIPModel(config).eval()


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A tiny random CLIPModel saved without tokenizer files (load_clip rebuilds the real BPE)."""
    folder = tmp_path_factory.mktemp("tiny_clip")
    build_tiny_clip().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def clip_factory():
    return build_tiny_clip


@pytest.fixture(scope="session")
def split_factory():
    return make_split


@pytest.fixture(scope="session")
def cnn_factory():
    return tiny_cnn


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny tensors: intra-op threads only spin (seconds per call on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
