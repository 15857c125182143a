"""The training bar's cost per step: a redraw every step (set_postfix's default) against drawing
at tqdm's pace (set_postfix(refresh=False), then update), alternating in one process.

    .venv/bin/python benchmarks/profile_progress_bar.py 2>/dev/null     # the bars go to stderr
"""

from __future__ import annotations

import statistics
import time

from tqdm.auto import tqdm

STEPS = 2000


def per_step(redraw_each_step: bool) -> float:
    bar = tqdm(total=STEPS, desc="training", unit="step", dynamic_ncols=True)
    started = time.perf_counter()
    for i in range(STEPS):
        if redraw_each_step:
            bar.update(1)
            bar.set_postfix(loss=f"{0.1234 + i:.4f}")
        else:
            bar.set_postfix(loss=f"{0.1234 + i:.4f}", refresh=False)
            bar.update(1)
    took = (time.perf_counter() - started) / STEPS
    bar.close()
    return took


def main() -> None:
    times = {True: [], False: []}
    for r in range(10):
        for redraw in (True, False) if r % 2 == 0 else (False, True):
            times[redraw].append(per_step(redraw))
    for redraw, values in times.items():
        print(f"{'redraw every step' if redraw else 'at tqdm pace'}: {1e6 * statistics.median(values):.1f} us per step")


if __name__ == "__main__":
    main()
