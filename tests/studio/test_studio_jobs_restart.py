"""Jobs outlive the studio: their records under studio/jobs/ are read back by a new app over the
same workspace, and a job that was running when the old one died is listed as interrupted."""

from __future__ import annotations

import json
import shutil
import threading
import time

import pytest
from fastapi.testclient import TestClient

from coverforge.studio.app import create_app
from coverforge.studio.jobs import JobManager


def client_for(ws):
    return TestClient(create_app(ws), base_url="http://127.0.0.1")


def wait_until(check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition never held")


def test_a_finished_generation_is_listed_after_a_restart(studio_workspace, wait_for):
    with client_for(studio_workspace) as first:
        job = wait_for(first, first.post("/api/generate", json={"model": {"kind": "model", "path": "models/tiny-sd15"},
                                                                 "book": {"title": "Night Ferry"}, "seeds": "2", "steps": 1}).json())
    assert job["status"] == "done"
    record = studio_workspace / "studio" / "jobs" / f"{job['id']}.json"
    assert json.loads(record.read_text())["status"] == "done"
    assert not list(record.parent.glob(".*.tmp"))  # written whole, then renamed into place
    with client_for(studio_workspace) as restarted:  # a new app: nothing in memory from the first
        listed = {j["id"]: j for j in restarted.get("/api/jobs").json()["jobs"]}
        assert listed[job["id"]] == job
        assert restarted.get(f"/api/jobs/{job['id']}").json()["results"][0]["seed"] == 2


def test_a_job_running_when_the_studio_died_is_interrupted(tmp_path):
    release = threading.Event()

    def work(job):
        job.add_result({"seed": 0})
        release.wait(30)

    died = create_app(tmp_path)  # never shut down: as a studio killed mid-job
    jobs: JobManager = died.state.studio.jobs
    job = jobs.submit("generate", "2 images", 2, work)
    record = tmp_path / "studio" / "jobs" / f"{job.id}.json"
    wait_until(lambda: record.is_file() and json.loads(record.read_text())["done"] == 1)
    try:
        with client_for(tmp_path) as restarted:
            (listed,) = restarted.get("/api/jobs").json()["jobs"]
        assert listed["id"] == job.id and listed["status"] == "interrupted" and listed["results"] == [{"seed": 0}]
        assert listed["message"] == "the studio stopped while this job ran; 1 of 2 images were made"
        assert json.loads(record.read_text())["status"] == "interrupted"
    finally:
        release.set()
        jobs.shutdown()


def test_a_broken_job_record_is_skipped_with_a_warning(tmp_path, caplog):
    folder = tmp_path / "studio" / "jobs"
    folder.mkdir(parents=True)
    (folder / "abc.json").write_text('{"id": "abc"')
    with client_for(tmp_path) as c:
        assert c.get("/api/jobs").json() == {"jobs": []}
    assert "job record abc.json is unreadable" in caplog.text


@pytest.mark.slow
def test_an_interrupted_training_shows_on_its_run_and_resumes(studio_workspace, tmp_path, monkeypatch, wait_for):
    ws = tmp_path / "ws"
    shutil.copytree(studio_workspace, ws, ignore=shutil.ignore_patterns("studio"))
    shutil.rmtree(ws / "runs" / "colours" / "final")  # stopped at its step-4 checkpoint
    # The studio that dies: its watcher thread dies with it, so nothing records how the training ended.
    monkeypatch.setattr(JobManager, "_watch_training", lambda self, job: None)
    died = create_app(ws)
    # Without `with`, the app's lifespan never runs: no shutdown stops the training or records its end.
    job = TestClient(died, base_url="http://127.0.0.1").post("/api/resume", json={"run": "runs/colours", "max_steps": 100000}).json()
    process = died.state.studio.jobs.get(job["id"]).process
    monkeypatch.undo()
    try:
        # While its trainer still runs, a new studio says so instead of offering a second one.
        with client_for(ws) as second:
            listed = second.get(f"/api/jobs/{job['id']}").json()
            assert listed["status"] == "interrupted" and f"process {process.pid} is still running" in listed["message"]
            refused = second.post("/api/resume", json={"run": "runs/colours"})
            assert refused.status_code == 400 and f"still being trained by process {process.pid}" in refused.json()["error"]
    finally:
        process.kill()
        process.wait()
    with client_for(ws) as third:
        (run,) = [r for r in third.get("/api/runs").json()["runs"] if r["path"] == "runs/colours"]
        assert run["status"] == "interrupted" and run["job"]["id"] == job["id"]
        assert run["job"]["message"] == "the studio stopped while this trained; resume the run from its last checkpoint"
        resumed = third.post("/api/resume", json={"run": "runs/colours", "max_steps": 5}).json()
        assert resumed["status"] == "running", resumed
        done = wait_for(third, resumed, timeout=240)
        assert done["status"] == "done", done["message"]
        assert third.get("/api/run", params={"path": "runs/colours"}).json()["status"] == "finished"
