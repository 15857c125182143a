"""Shared fixtures: tiny models in the real diffusers layout and a small prepared dataset."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    from coverforge.models.tiny import write_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    return {fam: write_tiny_model(fam, root / fam, seed=0) for fam in ("sd15", "sd2", "sdxl")}


@pytest.fixture(scope="session")
def flow_models(tmp_path_factory) -> dict[str, Path]:
    """The tiny Qwen-Image and Z-Image models (models/tiny_flow.py), built once per session."""
    from coverforge.models.tiny import write_tiny_model

    root = tmp_path_factory.mktemp("tiny-flow")
    return {fam: write_tiny_model(fam, root / fam, seed=0) for fam in ("qwen-image", "z-image")}


COLOURS = {"red": (200, 40, 40), "blue": (40, 60, 200), "green": (40, 170, 60), "gold": (220, 180, 40)}


def write_colour_dataset(root: Path, n_per_colour: int = 4, size: tuple[int, int] = (64, 96), seed: int = 0) -> Path:
    """A prepared-dataset folder of flat-ish coloured covers whose prompt names the colour."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_per_colour), ("validation", 1)):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for name, rgb in COLOURS.items():
            for k in range(n):
                arr = np.clip(np.array(rgb) + rng.normal(0, 12, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
                file = f"{name}-{k}.png"
                Image.fromarray(arr).save(folder / file)
                rows.append({"file_name": file, "text": f"Book cover. Title: \"A {name} book\". Genres: {name}.", "primary_genre": name,
                             "genres": [name], "width": size[0], "height": size[1]})
        (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="session")
def colour_dataset(tmp_path_factory) -> Path:
    return write_colour_dataset(tmp_path_factory.mktemp("colours"))
