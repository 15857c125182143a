"""Complete, atomic training checkpoints with a `latest` pointer and rotation.

A checkpoint holds the trained weights, optimizer, LR schedule, EMA, step, data position, every
RNG state and the resolved config. It is written into `checkpoints/.tmp-step-N`, completed with a
`COMPLETE` marker, then renamed into place; only then does `latest` move and do old checkpoints
go. A process killed mid-write leaves a `.tmp-*` folder that nobody reads.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from coverforge.errors import CoverforgeError

MARKER = "COMPLETE"


def rng_state(noise_generator: torch.Generator) -> dict:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "noise": noise_generator.get_state(),
    }


def set_rng_state(state: dict, noise_generator: torch.Generator) -> None:
    version, keys, *rest = state["numpy"]
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    np.random.set_state((version, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    noise_generator.set_state(state["noise"])


def save_checkpoint(run_dir: Path, step: int, trained: dict[str, torch.Tensor], training_state: dict, config_toml: str, keep: int) -> Path:
    """Write checkpoint `step` atomically, point `latest` at it, then rotate to `keep` checkpoints."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().cpu().contiguous() for k, v in trained.items()}, tmp / "trained.safetensors")
    torch.save(training_state, tmp / "state.pt")
    (tmp / "config.toml").write_text(config_toml)
    (tmp / MARKER).write_text(str(step))
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer_tmp = root / ".latest.tmp"
    pointer_tmp.write_text(final.name)
    os.replace(pointer_tmp, root / "latest")
    # Never rotate away the checkpoint just written, even when newer-named ones from an abandoned
    # branch of the run (resumed from an older checkpoint) exist.
    others = sorted(p for p in root.glob("step-*") if (p / MARKER).exists() and p != final)
    for old in others[: max(0, len(others) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _fsync_dir(folder: Path) -> None:
    for p in folder.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())


def resolve_checkpoint(run_dir: Path, which: str) -> Path:
    """`latest` or a path -> a complete checkpoint folder; falls back past incomplete ones."""
    if which != "latest":
        path = Path(which)
        if not (path / MARKER).exists():
            raise CoverforgeError(f"{path} is not a complete checkpoint (no {MARKER} marker)")
        return path
    root = run_dir / "checkpoints"
    pointer = root / "latest"
    if pointer.exists() and (root / pointer.read_text().strip() / MARKER).exists():
        return root / pointer.read_text().strip()
    complete = sorted(p for p in root.glob("step-*") if (p / MARKER).exists())
    if not complete:
        raise CoverforgeError(f"no complete checkpoint in {root} to resume from")
    return complete[-1]


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict, str]:
    trained = load_file(path / "trained.safetensors")
    # Our own file, but still loaded without unpickling arbitrary objects.
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    return trained, state, (path / "config.toml").read_text()
