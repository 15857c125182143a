"""The demo's genre judge: a small CNN trained on the real synthetic covers.

Evaluation asks it which genre a generated cover shows (genre alignment) and takes its
penultimate-layer features for a Frechet distance. It sees covers downscaled to a small square,
and trains with shifts, flips, colour jitter, blur and noise so that it judges a genre's visual
language (palette, motifs, composition) rather than exact pixels, and so that a soft generated
cover is read the same way as a sharp real one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from coverforge.errors import CoverforgeError

WEIGHTS_NAME = "judge.safetensors"
CONFIG_NAME = "judge.json"


@dataclass
class JudgeConfig:
    """What a judge network is: enough to rebuild it from its weights."""

    num_classes: int
    """Number of genres it tells apart."""
    size: int = 32
    """Covers are resized to size x size pixels before it looks at them."""
    width: int = 16
    """Channels of the first conv layer; later layers use 2x and 4x."""

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise CoverforgeError(f"judge num_classes must be at least 2, got {self.num_classes}")
        if self.size < 16 or self.size % 4:
            raise CoverforgeError(f"judge size must be a multiple of 4 and at least 16, got {self.size}")
        if self.width < 4:
            raise CoverforgeError(f"judge width must be at least 4, got {self.width}")

    @property
    def feature_dim(self) -> int:
        return 4 * self.width


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(8, c_out), nn.SiLU())


class JudgeNet(nn.Module):
    """Three conv stages, global average pooling (the features), a linear head."""

    def __init__(self, config: JudgeConfig) -> None:
        super().__init__()
        w = config.width
        self.body = nn.Sequential(
            _block(3, w), _block(w, w), nn.MaxPool2d(2),
            _block(w, 2 * w), _block(2 * w, 2 * w), nn.MaxPool2d(2),
            _block(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * w, config.num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)  # (B, 4w)
        return self.head(features), features


def to_tensor(images: list[Image.Image] | list[np.ndarray], size: int) -> torch.Tensor:
    """Covers (PIL images or uint8 HxWx3 arrays) as a (B, 3, size, size) tensor in [-1, 1].

    Portrait covers are squeezed to a square, area-averaged when shrinking, so real and generated
    covers of any size and aspect are compared on the same grid.
    """
    arrays = []
    for image in images:
        pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
        pil = pil.convert("RGB")
        if pil.size != (size, size):
            pil = pil.resize((size, size), Image.BOX if min(pil.size) >= size else Image.BICUBIC)
        arrays.append(np.asarray(pil, dtype=np.float32))
    if not arrays:
        return torch.zeros(0, 3, size, size)
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)  # (B, 3, size, size)
    return batch / 127.5 - 1.0


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Small shifts, flips, brightness/contrast/saturation jitter, occasional blur, pixel noise."""
    b, _, h, w = x.shape
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    pad = max(h // 8, 1)
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy, dx = (rand(2, b) * (2 * pad + 1)).long()
    x = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
    x = torch.where(rand(b, 1, 1, 1) < 0.5, x.flip(3), x)
    gray = x.mean(1, keepdim=True)
    x = gray + (x - gray) * (0.75 + 0.5 * rand(b, 1, 1, 1))  # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    x = mean + (x - mean) * (0.8 + 0.4 * rand(b, 1, 1, 1)) + 0.3 * (rand(b, 1, 1, 1) - 0.5)  # contrast, brightness
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    x = torch.where(rand(b, 1, 1, 1) < 0.3, blurred, x)
    x = x + 0.08 * rand(b, 1, 1, 1) * torch.randn(x.shape, generator=generator)
    return x.clamp(-1.0, 1.0)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread, then restore the caller's setting.

    A net this small gains nothing from intra-op threads, and when the cores are shared (the demo
    trains beside other work) OpenMP spinning made training 10x slower; one thread also makes the
    result independent of the machine's core count.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Judge:
    """A trained genre classifier over cover images."""

    def __init__(self, config: JudgeConfig, net: JudgeNet) -> None:
        self.config = config
        self.net = net.eval()

    @torch.no_grad()
    def _run(self, images: list, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        logits, features = [], []
        with single_thread():
            for start in range(0, len(images), batch_size):
                out = self.net(to_tensor(images[start : start + batch_size], self.config.size))
                logits.append(out[0])
                features.append(out[1])
        if not logits:
            return torch.zeros(0, self.config.num_classes), torch.zeros(0, self.config.feature_dim)
        return torch.cat(logits), torch.cat(features)

    def probabilities(self, images: list) -> np.ndarray:
        """(N, num_classes) class probabilities."""
        return torch.softmax(self._run(images)[0], dim=1).numpy()

    def predict(self, images: list) -> np.ndarray:
        """(N,) predicted class ids."""
        return self._run(images)[0].argmax(1).numpy()

    def features(self, images: list) -> np.ndarray:
        """(N, feature_dim) penultimate-layer features, float64, for a Frechet distance."""
        return self._run(images)[1].double().numpy()

    def save(self, folder: str | Path) -> Path:
        """Write `judge.safetensors` and `judge.json` into `folder`; return the folder."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(out / WEIGHTS_NAME), metadata={"config": json.dumps(asdict(self.config))})
        (out / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2) + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, folder: str | Path) -> "Judge":
        folder = Path(folder)
        weights, config_file = folder / WEIGHTS_NAME, folder / CONFIG_NAME
        for path in (weights, config_file):
            if not path.is_file():
                raise CoverforgeError(f"{path}: judge file missing; save a judge there with Judge.save first")
        config = JudgeConfig(**json.loads(config_file.read_text(encoding="utf-8")))
        net = JudgeNet(config)
        net.load_state_dict(load_file(str(weights)))
        return cls(config, net)


def train_judge(
    images: list[Image.Image],
    labels: list[int],
    num_classes: int,
    size: int = 32,
    seed: int = 0,
    epochs: int = 20,
    batch_size: int = 32,
    lr: float = 3e-3,
    width: int = 16,
) -> Judge:
    """Train a judge on covers and their genre ids; the same seed gives the same judge."""
    if len(images) != len(labels):
        raise CoverforgeError(f"train_judge: {len(images)} images but {len(labels)} labels")
    if not images:
        raise CoverforgeError("train_judge: no images to train on")
    bad = sorted({int(y) for y in labels if not 0 <= int(y) < num_classes})
    if bad:
        raise CoverforgeError(f"train_judge: labels {bad} outside 0..{num_classes - 1}")
    config = JudgeConfig(num_classes=num_classes, size=size, width=width)
    x_all = to_tensor(images, size)
    y_all = torch.tensor([int(y) for y in labels])
    generator = torch.Generator().manual_seed(seed)
    # Weight init and dropout draw from the global RNG: seed it inside a fork so the caller's is untouched.
    with torch.random.fork_rng(devices=[]), single_thread():
        torch.manual_seed(seed)
        net = JudgeNet(config)
        steps = epochs * ((len(images) + batch_size - 1) // batch_size)
        optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.2)
        net.train()
        for _ in range(epochs):
            order = torch.randperm(len(images), generator=generator)
            for start in range(0, len(images), batch_size):
                idx = order[start : start + batch_size]
                logits, _ = net(augment(x_all[idx], generator))
                loss = F.cross_entropy(logits, y_all[idx], label_smoothing=0.05)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
    return Judge(config, net)
