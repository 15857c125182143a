"""Named feature extractors with an identity (name:version:weights-hash) kept beside every figure.

`inception` is the standard FID Inception from a local weights file; `clip` embeds images with a
local CLIP model folder; any `torch.nn.Module` (B, 3, S, S) -> (B, D) can be wrapped. Images are
streamed in batches: only one batch of pixels is alive at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from coverforge.errors import CoverforgeError
from coverforge.hashing import file_hash, state_dict_hash

INCEPTION_FILES = ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth")
INCEPTION_VERSION = "tf-2015-12-05"


@dataclass
class FeatureExtractor:
    """A frozen image -> feature-vector map and what it is."""

    name: str
    """Registry name ("inception", "clip") or a caller's label for a custom module."""
    version: str
    """Architecture/preprocessing version; a change here must change the identity."""
    weights_hash: str
    """First 12 hex digits of the sha256 of the weights (file bytes or state dict)."""
    module: torch.nn.Module
    preprocess: Callable[[list[Image.Image]], torch.Tensor]
    """PIL images -> the module's (B, 3, H, W) input."""

    @property
    def identity(self) -> str:
        return f"{self.name}:{self.version}:{self.weights_hash}"

    @torch.inference_mode()
    def __call__(self, images: list[Image.Image]) -> torch.Tensor:
        device = next(self.module.parameters()).device
        out = self.module(self.preprocess(images).to(device))
        return out.float().cpu()  # (B, D)


def resize_to_tensor(images: list[Image.Image], size: int, scale: float = 1.0 / 255) -> torch.Tensor:
    """Bicubic resize of whole images (no crop) to size x size; (B, 3, size, size) float."""
    arrays = [np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)) for im in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() * scale


def module_extractor(module: torch.nn.Module, name: str = "custom", image_size: int = 64, version: str = "1") -> FeatureExtractor:
    """Wrap any module taking (B, 3, image_size, image_size) in [0, 1] and returning (B, D)."""
    module.eval().requires_grad_(False)
    return FeatureExtractor(
        name=name,
        version=f"{version}-{image_size}px",
        weights_hash=state_dict_hash(module),
        module=module,
        preprocess=lambda images: resize_to_tensor(images, image_size),
    )


def find_inception_weights(weights: str | Path | None = None) -> Path:
    """The given file, $COVERFORGE_INCEPTION_WEIGHTS, or a known file name in the usual caches."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise CoverforgeError(f"Inception weights file {path} does not exist")
        return path
    env = os.environ.get("COVERFORGE_INCEPTION_WEIGHTS")
    if env:
        return find_inception_weights(env)
    folders = [Path.home() / ".cache" / "coverforge", Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"]
    for folder in folders:
        for name in INCEPTION_FILES:
            if (folder / name).is_file():
                return folder / name
    raise CoverforgeError(
        f"FID Inception weights not found. Supply torch-fidelity's {INCEPTION_FILES[0]} (or pytorch-fid's "
        f"{INCEPTION_FILES[1]}) with --weights PATH, $COVERFORGE_INCEPTION_WEIGHTS, or place it in {folders[0]}/; "
        "or choose another extractor with --extractor clip --clip-model PATH"
    )


def inception_extractor(weights: str | Path | None = None) -> FeatureExtractor:
    """The TF-2015-12-05 FID Inception; images are resized whole to 299 (bicubic, as clean-fid)."""
    from coverforge.evaluation.inception_fid import INPUT_SIZE, FIDInceptionV3

    path = find_inception_weights(weights)
    state = torch.load(path, map_location="cpu", weights_only=True)
    module = FIDInceptionV3()
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise CoverforgeError(f"{path} is not an FID Inception-v3 state dict ({str(e).splitlines()[0]})") from e
    module.eval().requires_grad_(False)
    return FeatureExtractor(
        name="inception",
        version=f"{INCEPTION_VERSION}-pool3-bicubic{INPUT_SIZE}",
        weights_hash=file_hash(path),
        module=module,
        preprocess=lambda images: resize_to_tensor(images, INPUT_SIZE, scale=1.0),  # uint8 range
    )


class _ClipImageEmbedder(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.model.get_image_features(pixel_values=pixel_values)
        return getattr(out, "pooler_output", out)  # transformers 5 returns a model output


def clip_extractor(model_path: str | Path) -> FeatureExtractor:
    """Projected image embeddings of a local CLIP model folder; images padded to square first."""
    from coverforge.evaluation.clip_score import load_clip, pixel_values

    clip = load_clip(model_path)
    module = _ClipImageEmbedder(clip.model).eval()
    return FeatureExtractor(
        name="clip",
        version=f"{clip.model.config.vision_config.image_size}px-pad-border-mean",
        weights_hash=clip.weights_hash,
        module=module,
        preprocess=lambda images: pixel_values(images, clip.image_processor),
    )


EXTRACTORS: dict[str, Callable[..., FeatureExtractor]] = {
    "inception": lambda weights=None, **_: inception_extractor(weights),
    "clip": lambda weights=None, clip_model=None, **_: clip_extractor(clip_model or weights or _missing_clip()),
}


def _missing_clip() -> str:
    raise CoverforgeError("the clip extractor needs a local CLIP model folder: pass --clip-model PATH")


def get_extractor(name: str, weights: str | Path | None = None, clip_model: str | Path | None = None) -> FeatureExtractor:
    if name not in EXTRACTORS:
        raise CoverforgeError(f"unknown feature extractor {name!r}; choose one of {sorted(EXTRACTORS)}")
    return EXTRACTORS[name](weights=weights, clip_model=clip_model)


def batched(items: Iterable, batch_size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def extract_features(images_iter: Iterable[Image.Image], extractor: FeatureExtractor, batch_size: int = 32) -> torch.Tensor:
    """(N, D) float32 features; images are pulled from the iterator one batch at a time."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    chunks = []
    for batch in batched(images_iter, batch_size):
        chunks.append(extractor(batch))
        del batch  # else this name keeps the last batch alive while the next one is read
    if not chunks:
        raise CoverforgeError("no images to extract features from")
    return torch.cat(chunks)
