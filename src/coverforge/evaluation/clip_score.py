"""CLIP score (Hessel et al. 2021; torchmetrics' definition 100 * max(cos, 0)) for long prompts.

Two text windows: (a) the first 75 prompt tokens between BOS and EOS, so the pooled EOS token is
always there (plain truncation at 77 drops it); (b) the mean over consecutive 75-token chunks of
the whole prompt, each wrapped in BOS ... EOS. Portrait covers are padded to CLIP's square input
with their border colour rather than centre-cropped, so the title area stays in view.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from coverforge.errors import CoverforgeError
from coverforge.hashing import file_hash, state_dict_hash

log = logging.getLogger(__name__)

WINDOW = 75  # prompt tokens per 77-token CLIP context, leaving room for BOS and EOS


@dataclass
class ClipBundle:
    """A CLIP model with the tokenizer and image processor that go with it."""

    model: torch.nn.Module
    tokenizer: object
    image_processor: object
    weights_hash: str
    """First 12 hex digits identifying the weights, recorded with every CLIP figure."""

    @property
    def identity(self) -> str:
        return f"clip:{self.model.config.vision_config.image_size}px:{self.weights_hash}"


def _default_image_processor(image_size: int):
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})


def load_clip(path: str | Path) -> ClipBundle:
    """Load a local CLIP folder (CLIPModel); without tokenizer files the real CLIP BPE is rebuilt."""
    from transformers import CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    from coverforge.models.tokenizer import build_clip_tokenizer

    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise CoverforgeError(f"CLIP model folder {folder} has no config.json; pass a local CLIPModel folder (save_pretrained layout)")
    model = CLIPModel.from_pretrained(folder, local_files_only=True).eval().requires_grad_(False)
    if (folder / "tokenizer.json").is_file() or (folder / "vocab.json").is_file():
        tokenizer = CLIPTokenizer.from_pretrained(folder, local_files_only=True)
    else:
        log.info("%s has no tokenizer files; using the rebuilt CLIP BPE tokenizer", folder)
        tokenizer = build_clip_tokenizer()
    size = model.config.vision_config.image_size
    if (folder / "preprocessor_config.json").is_file():
        processor = CLIPImageProcessorPil.from_pretrained(folder, local_files_only=True)
    else:
        processor = _default_image_processor(size)
    weights = sorted(folder.glob("*.safetensors"))
    digest = file_hash(weights[0]) if len(weights) == 1 else state_dict_hash(model)
    return ClipBundle(model=model, tokenizer=tokenizer, image_processor=processor, weights_hash=digest)


def pad_to_square(image: Image.Image) -> Image.Image:
    """Centre the image on a square canvas filled with the mean colour of its one-pixel border."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    if w == h:
        return rgb
    a = np.asarray(rgb, dtype=np.float64)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])  # (2w + 2h, 3)
    fill = tuple(int(round(c)) for c in border.mean(axis=0))
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(rgb, ((side - w) // 2, (side - h) // 2))
    return canvas


def pixel_values(images: Sequence[Image.Image], image_processor) -> torch.Tensor:
    """(B, 3, S, S) CLIP input: padded to square, then the processor's resize and normalisation."""
    return image_processor(images=[pad_to_square(im) for im in images], return_tensors="pt")["pixel_values"]


def prompt_windows(tokenizer, prompt: str, window: int = WINDOW) -> list[list[int]]:
    """BOS + up to `window` tokens + EOS for each consecutive chunk of the prompt (at least one)."""
    ids = tokenizer(prompt, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    chunks = [ids[i : i + window] for i in range(0, len(ids), window)] or [[]]
    return [[tokenizer.bos_token_id, *chunk, tokenizer.eos_token_id] for chunk in chunks]


def _pooled(out) -> torch.Tensor:
    return getattr(out, "pooler_output", out)  # transformers 5 wraps the projected features


def _text_features(model, tokenizer, windows: list[list[int]]) -> torch.Tensor:
    length = max(len(w) for w in windows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.full((len(windows), length), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, w in enumerate(windows):
        ids[i, : len(w)] = torch.tensor(w)
        mask[i, : len(w)] = 1
    device = next(model.parameters()).device
    return _pooled(model.get_text_features(input_ids=ids.to(device), attention_mask=mask.to(device))).float().cpu()


def _split(processor_or_tokenizer, model):
    if hasattr(processor_or_tokenizer, "tokenizer") and hasattr(processor_or_tokenizer, "image_processor"):
        return processor_or_tokenizer.tokenizer, processor_or_tokenizer.image_processor
    return processor_or_tokenizer, _default_image_processor(model.config.vision_config.image_size)


@torch.inference_mode()
def clip_score(images: Sequence[Image.Image], prompts: Sequence[str], model, processor_or_tokenizer) -> dict:
    """Per-image and mean CLIP scores: `clip_score` (first window, EOS kept) and `clip_score_chunked`."""
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    tokenizer, image_processor = _split(processor_or_tokenizer, model)
    device = next(model.parameters()).device
    image = _pooled(model.get_image_features(pixel_values=pixel_values(images, image_processor).to(device))).float().cpu()
    image = image / image.norm(dim=-1, keepdim=True)  # (B, E)

    windows = [prompt_windows(tokenizer, p) for p in prompts]
    flat = [w for ws in windows for w in ws]
    text = _text_features(model, tokenizer, flat)
    text = text / text.norm(dim=-1, keepdim=True)  # (total chunks, E)
    owner = torch.tensor([i for i, ws in enumerate(windows) for _ in ws])
    chunk_scores = 100 * (image[owner] * text).sum(-1).clamp(min=0)  # (total chunks,)

    first = torch.tensor([sum(len(ws) for ws in windows[:i]) for i in range(len(windows))], dtype=torch.long)
    per_image = chunk_scores[first]
    per_image_chunked = torch.zeros(len(windows), dtype=chunk_scores.dtype).index_add_(0, owner, chunk_scores)
    per_image_chunked = per_image_chunked / torch.tensor([len(ws) for ws in windows], dtype=chunk_scores.dtype)
    return {
        "clip_score": float(per_image.mean()) if len(images) else float("nan"),
        "clip_score_chunked": float(per_image_chunked.mean()) if len(images) else float("nan"),
        "per_image": per_image.tolist(),
        "per_image_chunked": per_image_chunked.tolist(),
        "n_chunks": [len(ws) for ws in windows],
        "n": len(images),
    }
