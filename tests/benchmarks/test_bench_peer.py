"""bench_peer.py's rows write the coverforge config they say they run: the shared settings that do the
peer's maths, and a row's own coverforge options (sd15-compile's run.compile_unet) on top of them."""

from __future__ import annotations

import sys
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_peer  # noqa: E402
from peer_runs import coverforge_config  # noqa: E402

from coverforge.config import load_config  # noqa: E402


def _load(tmp_path: Path, row: bench_peer.Row):
    values = coverforge_config(tmp_path / "model", row.family, tmp_path / "data", row.resolution, 610, row.text_lora,
                               tmp_path / "cache", settings=row.settings)
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(values))
    return load_config(path)


def test_the_compile_row_adds_compile_and_keeps_the_shared_settings(tmp_path):
    plain, compiled = _load(tmp_path, bench_peer.ROWS["sd15"]), _load(tmp_path, bench_peer.ROWS["sd15-compile"])
    assert not plain.run.compile_unet and compiled.run.compile_unet
    assert bench_peer.ROWS["sd15-compile"].compiles and not bench_peer.ROWS["sd15"].compiles
    # Everything else, the run section's other keys included, is the plain row's.
    compiled.run.compile_unet = False
    assert compiled == plain
    assert compiled.run.cache_dir == str(tmp_path / "cache") and compiled.train.max_grad_norm == 1.0
