"""A studio workspace as an editor would have one: configs/, a base model, a prepared dataset, a
catalogue CSV and a finished LoRA run with checkpoints, all tiny (built once per session)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import tomli_w

SAMPLE = {"steps": 2, "width": 64, "height": 64, "prompts": ['Book cover. Title: "A red book". Genres: red.'], "seeds": [0, 1]}
CONFIG = {
    "model": {"path": "models/tiny-sd15"},
    "data": {"dataset": "data/colours", "resolution": 32, "buckets": False},
    "lora": {"rank": 4, "alpha": 4.0},
    "train": {"recipe": "lora", "max_steps": 4, "batch_size": 2, "checkpoint_every": 2, "log_every": 1, "log_with": "none"},
    "sample": SAMPLE,
}


def write_catalogue(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["title", "authors", "genres", "description"])
        w.writerow(["The Salt Road", "Mara Ellison", "Fantasy|Adventure", "A caravan crosses the salt flats."])
        w.writerow(["Night Ferry", "Jon Abel", "Thriller", "A crossing, a stranger, a missing case."])
    return path


@pytest.fixture(scope="session")
def studio_workspace(tmp_path_factory, tiny_models, colour_dataset) -> Path:
    """The shared workspace; tests that write into it write only under studio/ or new runs."""
    from coverforge.config import load_config
    from coverforge.training.loop import train

    ws = tmp_path_factory.mktemp("workspace")
    shutil.copytree(tiny_models["sd15"], ws / "models" / "tiny-sd15")
    shutil.copytree(tiny_models["sd2"], ws / "models" / "tiny-sd2")
    shutil.copytree(colour_dataset, ws / "data" / "colours", ignore=shutil.ignore_patterns(".cache"))
    write_catalogue(ws / "catalogue" / "spring.csv")
    (ws / "configs").mkdir()
    (ws / "configs" / "tiny-lora.toml").write_text(tomli_w.dumps(CONFIG))
    # The file's paths are workspace-relative (the studio trains with the workspace as cwd).
    overrides = [f"model.path={ws / 'models' / 'tiny-sd15'}", f"data.dataset={ws / 'data' / 'colours'}"]
    train(load_config(ws / "configs" / "tiny-lora.toml", overrides), ws / "runs" / "colours", progress=False)
    return ws


@pytest.fixture()
def client(studio_workspace):
    from fastapi.testclient import TestClient

    from coverforge.studio.app import create_app

    with TestClient(create_app(studio_workspace), base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture()
def wait_for():
    return wait_for_job


def wait_for_job(client, job: dict, timeout: float = 120.0) -> dict:
    """Poll a job until it ends (as the pages do); its final state."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job['id']}").json()
        if job["status"] not in ("queued", "running", "stopping"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job['id']} still {job['status']} after {timeout} s")
