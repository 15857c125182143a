"""CLIP tokenizers that can be had offline.

The hub is out of reach, but OpenAI CLIP's BPE merges ship inside the MIT-licensed
`open-clip-torch` wheel (`open_clip/bpe_simple_vocab_16e6.txt.gz`). From it we rebuild the real
49,408-token vocabulary exactly as OpenAI's `SimpleTokenizer` does. Where the file cannot be found
we build a small byte-level tokenizer in code and warn: token counts then differ from real CLIP.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from functools import lru_cache
from pathlib import Path

from transformers import CLIPTokenizer

log = logging.getLogger(__name__)

BPE_NAME = "bpe_simple_vocab_16e6.txt.gz"
N_MERGES = 49152 - 256 - 2  # lines 1..48894 of the file; line 0 is a version header
REAL_VOCAB_SIZE = 49408


def _bytes_to_unicode() -> list[str]:
    """GPT-2's reversible byte -> printable character map, in its canonical order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def find_bpe_file() -> Path | None:
    """$COVERFORGE_CLIP_BPE, then ~/.cache/coverforge, then an installed open_clip package."""
    candidates = []
    if os.environ.get("COVERFORGE_CLIP_BPE"):
        candidates.append(Path(os.environ["COVERFORGE_CLIP_BPE"]))
    candidates.append(Path.home() / ".cache" / "coverforge" / BPE_NAME)
    try:
        import importlib.util

        spec = importlib.util.find_spec("open_clip")
        if spec and spec.origin:
            candidates.append(Path(spec.origin).parent / BPE_NAME)
    except (ImportError, ValueError):
        pass
    return next((p for p in candidates if p.is_file()), None)


def _real_vocab(bpe_path: Path) -> tuple[dict[str, int], list[str]]:
    lines = gzip.open(bpe_path, "rt", encoding="utf-8").read().split("\n")
    merges = lines[1 : N_MERGES + 1]
    chars = _bytes_to_unicode()
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def _fallback_vocab() -> tuple[dict[str, int], list[str]]:
    """Bytes only: every word splits into characters. Enough to run, not to count tokens."""
    chars = _bytes_to_unicode()
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, []


@lru_cache(maxsize=None)
def _vocab() -> tuple[dict[str, int], tuple[str, ...]]:
    """The vocabulary and merges, read once per process."""
    bpe = find_bpe_file()
    if bpe is None:
        log.warning(
            "CLIP BPE merges not found (%s): using a byte-level stand-in tokenizer; token counts will "
            "not match real CLIP. Run scripts/setup.sh or set COVERFORGE_CLIP_BPE.", BPE_NAME
        )
        vocab, merges = _fallback_vocab()
    else:
        vocab, merges = _real_vocab(bpe)
    return vocab, tuple(merges)


def build_clip_tokenizer(pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """A CLIPTokenizer with model_max_length 77.

    pad_token: "<|endoftext|>" as in SD 1.x's CLIP-L; "!" (id 0) as in OpenCLIP encoders (SD 2.x and
    SDXL's second tokenizer).
    """
    vocab, merges = _vocab()
    pairs = [tuple(m.split()) for m in merges]
    return CLIPTokenizer(vocab=dict(vocab), merges=pairs, pad_token=pad_token, model_max_length=77)


def has_real_vocab() -> bool:
    return find_bpe_file() is not None


def save_tokenizer(tokenizer: CLIPTokenizer, folder: Path) -> None:
    """Save in every format a loader may look for: transformers 5 writes only tokenizer.json."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    vocab = dict(sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]))
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges = "\n".join(_vocab()[1])
    (folder / "merges.txt").write_text(f"#version: 0.2\n{merges}\n", encoding="utf-8")
