"""Frozen parts that no training step calls, parked off the training device.

With every prompt in the text cache the text encoders (7B / 4B parameters for the flow families)
only run again for validation prompts; with every image in the latent cache the VAE only decodes
validation samples. Parked on the CPU they free that device memory for the steps; `restored()`
brings them back around validation, so its images are the ones an unparked run draws.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from coverforge.config import Config
from coverforge.models.quantize import move_quantized_state


def idle_parts(parts, cfg: Config, text_cached: bool, latents_cached: bool) -> dict[str, torch.nn.Module]:
    """The frozen parts training will not call: {name: module}."""
    idle = {}
    if text_cached and cfg.run.offload_text_encoder:
        idle.update({name: m for name, m in zip(("text_encoder", "text_encoder_2"), parts.text_encoders) if m is not None})
    if latents_cached and cfg.run.offload_vae and parts.vae is not None:
        idle["vae"] = parts.vae
    return idle


class Offload:
    """Moves `modules` between the training `device` and `park` (the CPU)."""

    def __init__(self, modules: dict[str, torch.nn.Module], device: torch.device, park: torch.device = torch.device("cpu")):
        self.modules, self.device, self.park_device = modules, torch.device(device), torch.device(park)

    def park(self) -> None:
        self._move(self.park_device)

    @contextmanager
    def restored(self):
        """The parked modules on the training device for the block (validation), parked again after."""
        self._move(self.device)
        try:
            yield
        finally:
            self.park()

    def _move(self, device: torch.device) -> None:
        for module in self.modules.values():
            module.to(device)
            move_quantized_state(module, device)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()  # hand the freed blocks back, so the memory figures show it
