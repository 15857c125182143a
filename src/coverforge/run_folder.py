"""The run folder: what `train` writes and every later stage reads, named in one place.

    RUN/
      config.toml               the resolved config (what was trained, how it samples)
      checkpoints/
        step-00000400/          complete training state (see training/checkpoint.py)
          COMPLETE              written last: a checkpoint without it is unfinished
        .tmp-step-00000800/     a write in progress (nobody reads it)
        latest                  the name of the newest checkpoint
      final/
        lora/                   LoRA recipe: diffusers LoRA weights (config in their metadata)
        model/                  full and scratch recipes: a diffusers model folder
      samples/                  validation images drawn during and at the end of training
      logs/metrics.jsonl, loss.png, TensorBoard events
      generated/                images `generate` and the demo draw from the run

A run is finished when `final/` exists: it is written before anything that may fail after the
last step (samples, plots), so a finished run always has its weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from coverforge.errors import CoverforgeError

CHECKPOINT_MARKER = "COMPLETE"
_STEP = re.compile(r"step-(\d+)$")


@dataclass(frozen=True)
class RunFolder:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def latest_pointer(self) -> Path:
        return self.checkpoints / "latest"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step-{step:08d}"

    def checkpoint_in_progress(self, step: int) -> Path:
        return self.checkpoints / f".tmp-step-{step:08d}"

    def checkpoint_folders(self) -> list[Path]:
        """Every `step-*` folder, complete or not, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        return sorted((p for p in self.checkpoints.iterdir() if p.is_dir() and _STEP.match(p.name)), key=checkpoint_step)

    def complete_checkpoints(self) -> list[Path]:
        """Checkpoints whose write finished (marker present), oldest first. Their files may still
        be damaged: training/checkpoint.verify checks digests before a resume reads one."""
        return [p for p in self.checkpoint_folders() if (p / CHECKPOINT_MARKER).is_file()]

    @property
    def final(self) -> Path:
        return self.root / "final"

    @property
    def final_lora(self) -> Path:
        return self.final / "lora"

    @property
    def final_model(self) -> Path:
        return self.final / "model"

    def final_weights(self, recipe: str) -> Path:
        """What a recipe's run leaves for inference: LoRA weights, or a whole model folder."""
        return self.final_lora if recipe == "lora" else self.final_model

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def metrics_log(self) -> Path:
        return self.logs / "metrics.jsonl"

    @property
    def loss_plot(self) -> Path:
        return self.logs / "loss.png"

    @property
    def generated(self) -> Path:
        return self.root / "generated"

    def is_run(self) -> bool:
        """Started: a config was written (training may be running, stopped or finished)."""
        return self.config.is_file()

    def is_finished(self) -> bool:
        return self.config.is_file() and self.final.is_dir()

    def require_finished(self) -> "RunFolder":
        if not self.is_finished():
            raise CoverforgeError(f"{self.root} is not a finished run folder (needs {self.config.name} and {self.final.name}/); "
                                  "finish or resume its training first (coverforge train ... --resume latest)")
        return self


def checkpoint_step(path: Path) -> int:
    """The step a checkpoint folder holds, from its name (`step-00000400` -> 400)."""
    match = _STEP.match(Path(path).name)
    if not match:
        raise CoverforgeError(f"{path} is not a checkpoint folder (its name must look like step-00000400)")
    return int(match.group(1))
