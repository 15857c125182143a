"""Throughput of streamed feature extraction + statistics (images/s), on synthetic covers.

    .venv/bin/python benchmarks/bench_evaluate.py [--n 2000] [--clip-n 256]

Extractors: a small CNN and a CLIP ViT-B/32-shaped vision tower with random weights (built from
config, nothing downloaded). Images are made on the fly and never held beyond one batch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from coverforge.evaluation.clip_score import _default_image_processor, pixel_values
from coverforge.evaluation.features import FeatureExtractor, batched, module_extractor
from coverforge.evaluation.frechet import StreamingStats
from coverforge.hashing import state_dict_hash


def synthetic_covers(n: int, seed: int = 0, size=(256, 384)):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def small_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(32, 64, 3, stride=2), torch.nn.ReLU(),
        torch.nn.Conv2d(64, 128, 3, stride=2), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    )


def clip_b32() -> FeatureExtractor:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                              image_size=224, patch_size=32, projection_dim=512)
    model = CLIPVisionModelWithProjection(config).eval().requires_grad_(False)

    class Embed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(pixel_values=x).image_embeds

    processor = _default_image_processor(224)
    return FeatureExtractor("clip-b32-random", "bench", state_dict_hash(model), Embed(), lambda ims: pixel_values(ims, processor))


def throughput(extractor: FeatureExtractor, n: int, batch_size: int) -> float:
    stats = StreamingStats(extractor.identity)
    start = time.perf_counter()
    for batch in batched(synthetic_covers(n), batch_size):
        stats.update(extractor(batch))
        del batch
    stats.stats()
    return n / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="images for the small CNN")
    p.add_argument("--clip-n", type=int, default=256, help="images for the ViT-B/32-shaped CLIP (0 skips it)")
    args = p.parse_args()
    rows = []
    cnn = module_extractor(small_cnn(), name="small-cnn", image_size=64)
    for bs in (16, 64):
        rows.append(("small CNN (64px)", bs, args.n, throughput(cnn, args.n, bs)))
    if args.clip_n:
        clip = clip_b32()
        for bs in (16, 64):
            rows.append(("CLIP ViT-B/32 random (224px)", bs, args.clip_n, throughput(clip, args.clip_n, bs)))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; synthetic 256x384 covers, decode-free")
    print(f"{'extractor':32s} {'batch':>5s} {'images':>7s} {'images/s':>9s}")
    for name, bs, n, ips in rows:
        print(f"{name:32s} {bs:5d} {n:7d} {ips:9.1f}")


if __name__ == "__main__":
    main()
