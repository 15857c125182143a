"""One full-size synthetic catalogue shared by the demo tests (drawing it takes ~7 s of CPU).

Durations are CPU time of this process, so that a busy shared machine does not fail them.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from coverforge.demo.catalogue import make_catalogue


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("demo_catalogue")
    start = time.process_time()
    csv_path = make_catalogue(out, n_books=360, seed=0)
    seconds = time.process_time() - start
    with csv_path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return {"dir": Path(out), "csv": csv_path, "rows": rows, "seconds": seconds}
