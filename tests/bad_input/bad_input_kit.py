"""Helpers for the bad-input suite: run the real CLI in-process, and inputs built in code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coverforge.cli.main import main


def cover(path: Path, width: int = 300, height: int = 450, seed: int = 0, **save_kw) -> Path:
    """A colourful, textured cover (gradients + noise), deterministic per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    base, freq = rng.uniform(0, 255, 3), rng.uniform(2, 8, 3)
    img = np.stack([base[c] * 0.5 + 100 * np.sin(x / width * freq[c] + y / height * freq[(c + 1) % 3] + c) for c in range(3)], -1)
    img += rng.normal(0, 6, img.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, **save_kw)
    return path


class Cli:
    """`coverforge ...` in this process; returns (exit code, stdout, stderr)."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, *argv) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main([str(a) for a in argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    def fails(self, *argv, mentions: tuple[str, ...] = ()) -> str:
        """The command must exit 2 with exactly one line on stderr, no traceback, naming `mentions`."""
        code, _, err = self(*argv)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, f"exit {code}, stderr: {err}"
        assert len(lines) == 1 and "Traceback" not in err, err
        for word in mentions:
            assert word in lines[0], f"{word!r} not in {lines[0]!r}"
        return lines[0]


@pytest.fixture
def cli(capsys) -> Cli:
    return Cli(capsys)


def write_split(folder: Path, n: int, size=(48, 72), seed: int = 0, sizes: bool = True, genres=("fantasy", "romance")) -> Path:
    """An imagefolder split of n random covers; `sizes=False` leaves out width/height (plain HF layout)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        arr = np.clip(rng.uniform(0, 255, 3) + rng.normal(0, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{i:04d}.png")
        genre = genres[i % len(genres)]
        row = {"file_name": f"{i:04d}.png", "text": f"a {genre} book cover number {i}"}
        if sizes:
            row.update(width=size[0], height=size[1], genres=[genre], primary_genre=genre)
        rows.append(row)
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A tiny random CLIP model folder, the cheapest real feature extractor the CLI accepts."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                         max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, image_size=32, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_clip")
    CLIPModel(config).eval().save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny tensors: extra intra-op threads only spin on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
