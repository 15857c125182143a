"""benchmarks/bench_peer_gpu.py's method without a GPU: the step bar of a whole process is read as
it arrives (every update, once), the steady rate is taken past the warm-up, and pairs become ratios."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_peer_gpu  # noqa: E402
import peer_runs  # noqa: E402

# Prints a tqdm-like "Steps" bar, one update every 0.2 s, some split across writes and repeated.
FAKE_TRAINER = r"""
import sys, time
for n in range(1, 7):
    line = f"\rSteps:  {n * 16}%|##   | {n}/6 [00:0{n}<00:01, 5.0it/s]"
    sys.stderr.write(line[:9]); sys.stderr.flush(); time.sleep(0.01)
    sys.stderr.write(line[9:]); sys.stderr.flush()
    if n == 6:
        sys.stderr.write(line)  # tqdm's close draws the last state again
    time.sleep(0.2)
"""


def test_every_bar_update_is_timed_once_and_the_steady_rate_skips_the_warm_up(tmp_path):
    rc, _, wall, _, updates, gpu = peer_runs.run_process([sys.executable, "-c", FAKE_TRAINER], {}, tmp_path / "fake.log",
                                                         peer_runs.BAR_LABELS["peer"])
    assert rc == 0 and [n for _, n in updates] == [1, 2, 3, 4, 5, 6]
    times = [t for t, _ in updates]
    assert times == sorted(times) and times[-1] < wall
    run = peer_runs.Run("peer", 6, wall, 1.0, float("nan"), updates, gpu)
    rate = bench_peer_gpu.bar_rate(run, warm=2)  # 4 steps of batch 4 over about 0.8 s
    assert rate == pytest.approx(peer_runs.BATCH * 4 / (times[5] - times[1]))
    assert 10 < rate < 30
    assert bench_peer_gpu.bar_rate(run, warm=6) is None  # one update past the warm-up: no interval


def test_pairs_become_medians_and_ratios():
    def rec(pair, side, ips, wall):
        return {"pair": pair, "side": side, "steady_images_per_s": ips, "wall_s": wall, "first_step_s": 1.0,
                "gpu_peak_mib": None, "peak_rss_mb": 100}

    runs = [rec(1, "coverforge", 6.0, 50), rec(1, "peer", 4.0, 55), rec(2, "peer", 4.0, 50), rec(2, "coverforge", 8.0, 50),
            rec(3, "coverforge", 7.0, 40)]  # pair 3 lacks its peer run: left out
    lines = bench_peer_gpu.summary({"row": runs})
    ips = lines[0]
    assert ips[:4] == ["row", "steady images/s", "7.00", "4.00"] and ips[4] == "1.75x" and ips[5] == "1.50-2.00x"
    assert [line[1] for line in lines] == ["steady images/s", "whole run, s", "launch to first step, s", "peak RSS, MB"]
