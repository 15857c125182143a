"""Trainings started from the studio: a `coverforge train` subprocess with live progress, stopped
with a checkpoint, resumed to the end."""

from __future__ import annotations

import shutil
import time

import pytest
from fastapi.testclient import TestClient

from coverforge.studio.app import create_app


@pytest.fixture()
def fresh(studio_workspace, tmp_path):
    """The shared workspace without its runs: this test adds one."""
    ws = tmp_path / "ws"
    shutil.copytree(studio_workspace, ws, ignore=shutil.ignore_patterns("runs", "studio"))
    with TestClient(create_app(ws), base_url="http://127.0.0.1") as c:
        yield ws, c


def run_detail(client, until, timeout=240.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get("/api/run", params={"path": "runs/spring"})
        if r.status_code == 200 and until(r.json()):
            return r.json()
        time.sleep(0.5)
    raise AssertionError(f"run never reached the state; last: {r.text[:500]}")


@pytest.mark.slow
def test_train_stop_with_a_checkpoint_then_resume_to_the_end(fresh, wait_for):
    ws, client = fresh
    fields = {"train.max_steps": 500, "run.checkpoint_every": 1000, "sample.every": 0}
    job = client.post("/api/train", json={"config": "configs/tiny-lora.toml", "run_name": "spring", "fields": fields}).json()
    assert job["status"] == "running" and job["run"] == "runs/spring"
    # Live progress: the run's own metrics, read while it trains.
    training = run_detail(client, lambda r: r["status"] == "training" and r["step"] >= 2)
    assert training["max_steps"] == 500 and len(training["curve"]) >= 2
    assert client.post("/api/train", json={"config": "configs/tiny-lora.toml", "run_name": "spring"}).status_code == 400

    client.post(f"/api/jobs/{job['id']}/stop")
    stopped = wait_for(client, job, timeout=120)
    assert stopped["status"] == "stopped"
    run = run_detail(client, lambda r: r["status"] == "stopped")
    step = run["step"]
    assert 2 <= step < 500 and [c["step"] for c in run["checkpoints"]] == [step]  # SIGTERM wrote one
    assert any("stopped by SIGTERM" in line for line in run["log"])

    resumed = client.post("/api/resume", json={"run": "runs/spring", "max_steps": step + 2}).json()
    done = wait_for(client, resumed, timeout=240)
    assert done["status"] == "done", done["message"]
    final = run_detail(client, lambda r: r["status"] == "finished")
    assert final["step"] == step + 2 and [p[0] for p in final["curve"]][-2:] == [step + 1, step + 2]
    assert (ws / "runs" / "spring" / "final" / "lora").is_dir()


@pytest.mark.slow
def test_a_training_that_fails_reports_its_error_line(fresh, wait_for):
    ws, client = fresh
    job = client.post("/api/train", json={"config": "configs/tiny-lora.toml", "run_name": "broken",
                                          "fields": {"data.dataset": "data/nowhere"}}).json()
    failed = wait_for(client, job, timeout=180)
    assert failed["status"] == "failed" and "data/nowhere" in failed["message"] and "\n" not in failed["message"]
    (listed,) = [r for r in client.get("/api/runs").json()["runs"] if r["path"] == "runs/broken"]  # no folder, still shown
    assert listed["status"] == "failed" and listed["job"]["message"] == failed["message"]
    assert client.post("/api/resume", json={"run": "runs/broken"}).status_code == 404
