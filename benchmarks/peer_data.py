"""Models and datasets for bench_peer.py, built the way a user would build them, reused in --work.

The tiny SDXL and SD 1.5 come from `coverforge tiny-model`, the small proportioned SDXL from
small_models.py; the covers (painted demo art, square at the training side, so the peers' resize
and crop change no pixel) become a dataset through `coverforge prepare --from-folder`. Prompts are
title, author, genres and the blurb's first words, kept under 77 CLIP tokens with BOS and EOS: the
peers truncate at 77, coverforge does not, and both sides must see the same text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from small_models import write_real_sd15, write_real_sdxl, write_small_sdxl

PYTHON = sys.executable
PROMPT_TOKENS = 60
"""Words are dropped from a prompt until it holds at most this many tokens (77 with BOS + EOS)."""


def coverforge_cli(*args: str) -> None:
    done = subprocess.run([PYTHON, "-m", "coverforge", *args], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode:
        raise RuntimeError(f"coverforge {' '.join(args)} exited {done.returncode}:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")


def build_model(name: str, folder: Path) -> Path:
    """`tiny-sdxl`, `tiny-sd15` (coverforge tiny-model), `small-sdxl`, `real-sdxl` or `real-sd15` (small_models.py), kept when present."""
    if (folder / "model_index.json").is_file():
        return folder
    if name == "small-sdxl":
        return write_small_sdxl(folder)
    if name in ("real-sdxl", "real-sd15"):  # the published sizes, random weights, built on the GPU where there is one
        import torch

        write = write_real_sdxl if name == "real-sdxl" else write_real_sd15
        return write(folder, "cuda" if torch.cuda.is_available() else "cpu")
    coverforge_cli("tiny-model", "--family", name.removeprefix("tiny-"), "--out", str(folder))
    return folder


def short_prompt(tokenizer, book: dict) -> str:
    from coverforge.data.prompts import build_prompt

    words = build_prompt({"title": book["book_title"], "authors": book["book_authors"].split("|"),
                          "genres": book["genres"].split("|"), "description": book["book_desc"]}).split()
    while len(tokenizer(" ".join(words), add_special_tokens=False, verbose=False).input_ids) > PROMPT_TOKENS:
        words.pop()
    return " ".join(words)


def build_dataset(folder: Path, side: int, n: int, tokenizers: list, seed: int = 0) -> tuple[Path, int]:
    """`n` square covers of `side` px through `prepare --from-folder`; returns the dataset and its longest prompt in tokens."""
    from coverforge.demo.art import paint_cover
    from coverforge.demo.catalogue import GENRES, book_row

    train = folder / "train"
    if not (train / "metadata.jsonl").is_file():
        source = folder.parent / f"{folder.name}-covers"
        source.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            genre = GENRES[i % len(GENRES)]
            rng = np.random.default_rng([seed, i])
            book = book_row(rng, genre)
            paint_cover(genre, rng, (side, side)).save(source / f"{i:03d}.png")
            (source / f"{i:03d}.txt").write_text(short_prompt(tokenizers[0], book))
        # Exact duplicates only: at 64 px, painted covers of one genre are near each other by pHash.
        coverforge_cli("prepare", "--from-folder", str(source), "--out", str(folder), "--min-size", str(side),
                       "--orientation", "any", "--val-fraction", "0", "--near-duplicate-distance", "-1")
    rows = [json.loads(line) for line in (train / "metadata.jsonl").read_text().splitlines() if line.strip()]
    if len(rows) != n:
        raise RuntimeError(f"{folder}: prepare kept {len(rows)} of {n} covers; see {folder / 'report.md'}")
    longest = max(len(tok(r["text"], verbose=False).input_ids) for tok in tokenizers for r in rows)
    if longest > 77:
        raise RuntimeError(f"{folder}: a prompt has {longest} tokens; the peers would truncate it at 77")
    return folder, longest


def tokenizers_of(model: Path) -> list:
    """The model's CLIP tokenizers. A model whose text encoder is an LLM (Qwen-Image, Z-Image) gets
    the same CLIP vocabulary, so every row trims prompts alike and shares one dataset folder; its
    peers read up to 512 tokens, far above these prompts (see `llm_tokens`)."""
    from transformers import CLIPTokenizer

    from coverforge.models.tokenizer import build_clip_tokenizer

    subs = [sub for sub in ("tokenizer", "tokenizer_2") if (model / sub).is_dir()]
    if json.loads((model / subs[0] / "tokenizer_config.json").read_text()).get("tokenizer_class") != "CLIPTokenizer":
        return [build_clip_tokenizer()]
    return [CLIPTokenizer.from_pretrained(model / sub) for sub in subs]


def llm_tokens(model: Path, dataset: Path) -> int:
    """The longest prompt of the dataset in the model's own tokenizer's tokens (for LLM text encoders)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model / "tokenizer")
    rows = [json.loads(line) for line in (dataset / "train" / "metadata.jsonl").read_text().splitlines() if line.strip()]
    return max(len(tokenizer(r["text"]).input_ids) for r in rows)
