"""SHA-256 of files and of tensors: the one way coverforge fingerprints what it wrote or loaded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch


def sha256_hex(*chunks: bytes) -> str:
    """SHA-256 over byte strings in order (content names: pixels, URLs, uploads)."""
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_hash(path: str | Path) -> str:
    """Short identity of a weights file (first 12 hex digits), recorded beside figures and in PNGs."""
    return file_sha256(path)[:12]


def weights_hash(folder_or_file: str | Path) -> str:
    """Short identity of weights on disk: a file's, or every .safetensors file's under a folder
    (a hub id or a folder without them: its name, which is all there is to go on)."""
    p = Path(folder_or_file)
    if p.is_file():
        return file_hash(p)
    files = sorted(p.rglob("*.safetensors")) if p.is_dir() else []
    return sha256_hex("".join(file_hash(f) for f in files).encode())[:12] if files else str(folder_or_file)


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
