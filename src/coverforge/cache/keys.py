"""Cache keys: what an entry was computed from, hashed.

A cache folder is named by a *setting* fingerprint (the model weights and every option that
changes the output); inside it, each entry is named by an *item* key (the image file and the
bucket it is cut to, or the prompt text). Change an image, a prompt, the model or a setting and
exactly the affected entries get new names and are recomputed; the rest are reused.
"""

from __future__ import annotations

import hashlib
import json
import os

import torch

_FINGERPRINT_ATTR = "_coverforge_fingerprint"


def digest(*parts: object, size: int = 16) -> str:
    h = hashlib.blake2b(digest_size=size)
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode() if not isinstance(part, bytes) else part)
        h.update(b"\x00")
    return h.hexdigest()


def module_fingerprint(module: torch.nn.Module) -> str:
    """Hash of a module's class, config and every weight. Remembered on the module, so call it on
    frozen modules only (a trained module's fingerprint would go stale)."""
    known = getattr(module, _FINGERPRINT_ATTR, None)
    if known is not None:
        return known
    h = hashlib.blake2b(digest_size=16)
    h.update(type(module).__name__.encode())
    config = getattr(module, "config", None)
    if config is not None:
        h.update(json.dumps(dict(config) if not hasattr(config, "to_dict") else config.to_dict(), sort_keys=True, default=str).encode())
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tensor.dtype).encode())
        # Bytes via a uint8 view: works for bf16 too, which numpy cannot hold.
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        h.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    value = h.hexdigest()
    object.__setattr__(module, _FINGERPRINT_ATTR, value)
    return value


def tokenizer_fingerprint(tokenizer) -> str:
    vocab = sorted(tokenizer.get_vocab().items())
    return digest(type(tokenizer).__name__, vocab, getattr(tokenizer, "model_max_length", None),
                  getattr(tokenizer, "pad_token", None), getattr(tokenizer, "bos_token", None), getattr(tokenizer, "eos_token", None))


def image_key(record: dict, bucket: tuple[int, int], flip: bool) -> str:
    """The cover file (content hash when `prepare` recorded one, else size + modification time)
    and how it is cut: a replaced image or a new bucket gives a new key."""
    path = record["path"]
    stat = os.stat(path)
    return digest(os.path.abspath(path), record.get("sha256"), stat.st_size, stat.st_mtime_ns, list(bucket), flip)


def prompt_key(prompt: str) -> str:
    return digest(prompt)
