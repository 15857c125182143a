"""Complete, atomic training checkpoints with a `latest` pointer and rotation.

A checkpoint holds the trained weights, optimizer, LR schedule, EMA, step, data position, every
RNG state and the resolved config. It is written into `checkpoints/.tmp-step-N`, completed with a
`COMPLETE` marker, then renamed into place; only then does `latest` move and do old checkpoints
go. A process killed mid-write leaves a `.tmp-*` folder that nobody reads. `SHA256SUMS` lists each
file's digest (`sha256sum -c` reads it too): resuming takes the newest checkpoint whose files still verify (a disk error or a
partial copy damages a checkpoint after it was complete) and says which it passed over and why.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from coverforge.errors import CoverforgeError
from coverforge.hashing import file_sha256
from coverforge.run_folder import CHECKPOINT_MARKER as MARKER
from coverforge.run_folder import RunFolder

SUMS = "SHA256SUMS"
CONFIG = "config.toml"
"""The run's resolved config as it was at this checkpoint (a resume compares it with the new one)."""
FILES = ("trained.safetensors", "state.pt", CONFIG)
log = logging.getLogger(__name__)


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
    run = RunFolder(run_dir)
    root = run.checkpoints
    root.mkdir(parents=True, exist_ok=True)
    final, tmp = run.checkpoint(step), run.checkpoint_in_progress(step)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().cpu().contiguous() for k, v in trained.items()}, tmp / "trained.safetensors")
    torch.save(training_state, tmp / "state.pt")
    (tmp / CONFIG).write_text(config_toml)
    (tmp / SUMS).write_text("".join(f"{file_sha256(tmp / name)}  {name}\n" for name in FILES))
    (tmp / MARKER).write_text(str(step))
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer_tmp = root / ".latest.tmp"
    pointer_tmp.write_text(final.name)
    os.replace(pointer_tmp, run.latest_pointer)
    # Never rotate away the checkpoint just written, even when newer-named ones from an abandoned
    # branch of the run (resumed from an older checkpoint) exist.
    others = [p for p in run.complete_checkpoints() if p != final]
    for old in others[: max(0, len(others) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _fsync_dir(folder: Path) -> None:
    for p in folder.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())


def verify(path: Path) -> str:
    """'' when the checkpoint is complete and its files match the digests written with them, else why not."""
    if not (path / MARKER).is_file():
        return f"no {MARKER} marker (the write did not finish)"
    sums = {}
    if (path / SUMS).is_file():  # checkpoints from before digests were written have none to check
        sums = dict(reversed(line.split("  ", 1)) for line in (path / SUMS).read_text().splitlines() if "  " in line)
    for name in FILES:
        if not (path / name).is_file():
            return f"{name} is missing"
        if sums and file_sha256(path / name) != sums.get(name):
            return f"{name} does not match the digest written with it (damaged after it was saved)"
    return ""


def resolve_checkpoint(run_dir: Path, which: str) -> Path:
    """`latest` or a path -> a checkpoint that verifies; `latest` passes over damaged ones, newest first."""
    if which != "latest":
        path = Path(which)
        problem = verify(path)
        if problem:
            raise CoverforgeError(f"cannot resume from {path}: {problem}; resume from another checkpoint or from --resume latest")
        return path
    run = RunFolder(run_dir)
    root, pointer = run.checkpoints, run.latest_pointer
    named = root / pointer.read_text().strip() if pointer.is_file() else None
    candidates = run.checkpoint_folders()[::-1]
    if named in candidates:  # the pointer's target first, even when an abandoned branch has newer names
        candidates.remove(named)
        candidates.insert(0, named)
    for path in candidates:
        problem = verify(path)
        if not problem:
            return path
        log.warning("skipping checkpoint %s: %s", path, problem)
    raise CoverforgeError(f"no complete checkpoint in {root} to resume from" + (" (every one is damaged: see the warnings)" if candidates else ""))


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict, str]:
    try:
        trained = load_file(path / "trained.safetensors")
        # Our own file, but still loaded without unpickling arbitrary objects.
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
        config = (path / CONFIG).read_text()
    except Exception as e:  # noqa: BLE001 - any failure to read it means the checkpoint is unusable
        # One line of our own: torch's message would suggest weights_only=False, an unsafe fix.
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        if "weights" in first.lower() and "only" in first.lower():
            first = "not a readable state file"
        raise CoverforgeError(f"checkpoint {path} cannot be read ({first}): resume from an earlier checkpoint") from None
    return trained, state, config
