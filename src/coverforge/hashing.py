"""SHA-256 of files and of tensors: the one way coverforge fingerprints what it wrote or loaded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """Over names and raw bytes, in name order: equal exactly when every tensor is bit-identical."""
    h = hashlib.sha256()
    for key, value in sorted(tensors.items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
