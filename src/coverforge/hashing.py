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


def file_hash(path: str | Path) -> str:
    """Short identity of a weights file (first 12 hex digits), recorded beside figures and in PNGs."""
    return file_sha256(path)[:12]


def state_dict_hash(module: torch.nn.Module) -> str:
    """Short identity of a module's weights as loaded (first 12 hex digits)."""
    return tensors_sha256(module.state_dict())[:12]


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """Over names and raw bytes, in name order: equal exactly when every tensor is bit-identical."""
    h = hashlib.sha256()
    for key, value in sorted(tensors.items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
