"""A training step's cache reads (4 latent entries, 4 prompts), with and without the store's memo.

    .venv/bin/python benchmarks/profile_cache_reads.py RUN_CACHE_DIR [--epochs 40]

RUN_CACHE_DIR is a run's `run.cache_dir` (it holds latents-* and text-* stores), e.g. one that
profile_peer_step.py left in its --work folder. Both variants run in this one process, alternating
epoch by epoch (16 steps each, after one epoch that fills the memo), so machine load affects both
alike; prints the median time per step of each.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import coverforge.cache.store as store_module
from coverforge.cache.store import ShardStore

BATCH, STEPS = 4, 16


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache_dir", type=Path)
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()
    latents, text = (ShardStore(next(args.cache_dir.glob(f"{kind}-*"))) for kind in ("latents", "text"))
    keys = sorted(latents.keys()), sorted(text.keys())

    def epoch() -> None:
        for step in range(STEPS):
            for j in range(BATCH):
                for store, k in zip((latents, text), keys):
                    store.get(k[(BATCH * step + j) % len(k)])

    budget, times = store_module.MEMO_BYTES, {"memo": [], "no memo": []}
    for r in range(args.epochs):
        for name in ("memo", "no memo") if r % 2 == 0 else ("no memo", "memo"):
            store_module.MEMO_BYTES = budget if name == "memo" else 0
            latents.refresh(), text.refresh()  # forget what was kept
            epoch()  # the first epoch reads every entry from its shard
            started = time.perf_counter()
            epoch()
            times[name].append((time.perf_counter() - started) / STEPS)
    for name, values in times.items():
        print(f"{name}: {1e3 * statistics.median(values):.3f} ms of cache reads per step (median of {len(values)} epochs)")


if __name__ == "__main__":
    main()
