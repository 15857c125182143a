"""Reference statistics of a dataset split, computed once and stored beside their extractor identity.

`stats.safetensors` holds mu and sigma (float64) and the features (float32, for KID and per-genre
figures); `reference.json` says what produced them, so a later evaluation with another extractor
is refused instead of silently compared.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from coverforge.data.text_files import read_text
from coverforge.errors import CoverforgeError
from coverforge.evaluation.features import FeatureExtractor, extract_features
from coverforge.evaluation.frechet import FeatureStats, stats_from_features
from coverforge.evaluation.image_folder import iter_images, read_metadata

STATS_FILE = "stats.safetensors"
META_FILE = "reference.json"


@dataclass
class Reference:
    """Stored statistics of a real image set."""

    stats: FeatureStats
    features: torch.Tensor
    """(N, D) float32 features, in metadata order."""
    primary_genres: list[str]
    """primary_genre of each feature row, for per-genre FID/KID."""
    meta: dict


def _library_versions() -> dict[str, str]:
    import PIL
    import scipy
    import torchmetrics
    import transformers

    import coverforge

    return {
        "coverforge": coverforge.__version__, "torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
        "transformers": transformers.__version__, "torchmetrics": torchmetrics.__version__, "pillow": PIL.__version__,
        "python": platform.python_version(),
    }


def compute_reference(dataset_split_dir: str | Path, extractor: FeatureExtractor, out_dir: str | Path, batch_size: int = 32) -> Reference:
    """Extract features of every image in the split (streamed) and write the two reference files."""
    split = Path(dataset_split_dir)
    rows = read_metadata(split)
    if len(rows) < 2:
        raise CoverforgeError(f"{split} holds {len(rows)} image; reference statistics need at least 2 (FID compares covariances, "
                              "KID pairs of images); use a split with more images")
    features = extract_features((im for im, _ in iter_images(split, rows)), extractor, batch_size)
    stats = stats_from_features(features, extractor.identity)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {"mu": torch.from_numpy(stats.mu), "sigma": torch.from_numpy(stats.sigma), "features": features.float().contiguous()},
        str(out / STATS_FILE),
        metadata={"extractor": extractor.identity, "n": str(stats.n)},
    )
    meta = {
        "extractor": extractor.identity,
        "n": stats.n,
        "feature_dim": int(features.shape[1]),
        "dataset": str(split.resolve()),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": _library_versions(),
        "primary_genres": [r["primary_genre"] for r in rows],
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return Reference(stats=stats, features=features, primary_genres=meta["primary_genres"], meta=meta)


def load_reference(folder: str | Path, expected_extractor: str | FeatureExtractor | None = None) -> Reference:
    """Read stored statistics; refuse them where they came from another extractor."""
    folder = Path(folder)
    redo = f"recompute it with `coverforge evaluate reference DATASET/validation --out {folder}`"
    for name in (STATS_FILE, META_FILE):
        if not (folder / name).is_file():
            raise CoverforgeError(f"{folder / name} not found: compute it with `coverforge evaluate reference DATASET/validation --out {folder}`")
    try:
        meta = json.loads(read_text(folder / META_FILE))
    except json.JSONDecodeError as e:
        raise CoverforgeError(f"{folder / META_FILE} is not valid JSON ({e.msg}, line {e.lineno}); {redo}") from None
    if not isinstance(meta, dict) or not {"extractor", "n"} <= set(meta):
        raise CoverforgeError(f"{folder / META_FILE} lacks the extractor and n of the statistics; {redo}")
    expected = expected_extractor.identity if isinstance(expected_extractor, FeatureExtractor) else expected_extractor
    if expected is not None and meta["extractor"] != expected:
        raise CoverforgeError(
            f"reference {folder} was computed with extractor {meta['extractor']!r}, but this evaluation uses {expected!r}; "
            "recompute the reference with the same extractor and weights"
        )
    try:
        tensors = load_file(str(folder / STATS_FILE))
    except (SafetensorError, OSError, ValueError) as e:
        raise CoverforgeError(f"{folder / STATS_FILE} is damaged or truncated ({e}); {redo}") from None
    _check_shapes(folder, tensors, meta, redo)
    stats = FeatureStats(mu=tensors["mu"].numpy(), sigma=tensors["sigma"].numpy(), n=int(meta["n"]), extractor=meta["extractor"])
    return Reference(stats=stats, features=tensors["features"], primary_genres=list(meta.get("primary_genres", [])), meta=meta)


def _check_shapes(folder: Path, tensors: dict, meta: dict, redo: str) -> None:
    """mu (D,), sigma (D, D) and features (N, D) of one width D, the width reference.json states."""
    missing = {"mu", "sigma", "features"} - set(tensors)
    if missing:
        raise CoverforgeError(f"{folder / STATS_FILE} lacks {', '.join(sorted(missing))}; {redo}")
    mu, sigma, features = tensors["mu"], tensors["sigma"], tensors["features"]
    width = mu.shape[0] if mu.ndim == 1 else -1
    shapes_agree = sigma.shape == (width, width) and features.ndim == 2 and features.shape[1] == width
    if not shapes_agree or int(meta.get("feature_dim", width)) != width:
        raise CoverforgeError(f"{folder / STATS_FILE}: feature widths differ (mu {tuple(mu.shape)}, sigma {tuple(sigma.shape)}, "
                              f"features {tuple(features.shape)}, reference.json {meta.get('feature_dim')}); {redo}")
    if features.shape[0] < 2:
        raise CoverforgeError(f"{folder / STATS_FILE} holds {features.shape[0]} image's features; FID/KID need at least 2; {redo}")
