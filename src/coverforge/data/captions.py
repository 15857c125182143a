"""Captions from an image-to-text model (BLIP-style, via transformers) for rows that have none.

Folder imports can leave rows without captions; this fills them in place, keeping the rest of
each row and the dataset layout unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path

from coverforge.data.layout import SPLITS, read_metadata, write_metadata
from coverforge.data.prompts import clean_text
from coverforge.errors import CoverforgeError

log = logging.getLogger(__name__)


def load_captioner(model_path: str | Path, device: str = "cpu"):
    """(processor, model) from a local folder saved with save_pretrained (config, weights, processor)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = Path(model_path)
    if not (path / "config.json").is_file():
        raise CoverforgeError(f"captioning model {path} has no config.json; give a folder saved with save_pretrained")
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).to(device).eval()
    return processor, model


def generate_captions(images: list, processor, model, max_new_tokens: int = 40) -> list[str]:
    """Greedy captions for a batch of PIL images."""
    import torch

    inputs = processor(images=images, return_tensors="pt").to(model.device)
    with torch.inference_mode():
        ids = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return [clean_text(t) for t in processor.batch_decode(ids, skip_special_tokens=True)]


def caption_dataset(
    dataset: str | Path,
    model_path: str | Path,
    batch_size: int = 8,
    max_new_tokens: int = 40,
    prefix: str = "",
    overwrite: bool = False,
    device: str = "cpu",
) -> int:
    """Fill empty `text` (all rows with overwrite) in every split; returns how many rows got a caption."""
    from PIL import Image

    dataset = Path(dataset)
    splits = [s for s in SPLITS if (dataset / s / "metadata.jsonl").is_file()]
    if not splits:
        raise CoverforgeError(f"{dataset} has no train/ or validation/ metadata.jsonl; run `coverforge prepare` first")
    processor, model = load_captioner(model_path, device)
    filled = 0
    for split in splits:
        rows = read_metadata(dataset / split, require_text=False)
        todo = [r for r in rows if overwrite or not (r.get("text") or "").strip()]
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            images = [Image.open(r["path"]).convert("RGB") for r in batch]
            for row, caption in zip(batch, generate_captions(images, processor, model, max_new_tokens)):
                if caption:
                    row["text"] = f"{prefix}{caption}".strip()
                    filled += 1
        write_metadata(dataset / split, rows)
        missing = sum(1 for r in rows if not (r.get("text") or "").strip())
        if missing:
            log.warning("%s: %d rows still without a caption (the model returned nothing)", split, missing)
    return filled
