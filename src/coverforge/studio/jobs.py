"""Background jobs: trainings as `python -m coverforge train` subprocesses, generation work on
one worker thread.

A training runs in its own process so that stopping it is the CLI's own SIGTERM path (finish
the step, write a checkpoint, exit) and a crash in it cannot take the studio down. Generation
jobs share one thread: models are large, the machine's cores are few, and one model at a time
keeps memory bounded; jobs queue behind each other.

Each job's public record is kept as JSON under studio/jobs/ (written whole and renamed into
place), so a restarted studio still lists past trainings and generations with how they ended; a
job that was running when the studio died is listed as "interrupted" (a training's run resumes
from its last checkpoint as after a stop).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from coverforge.errors import CoverforgeError
from coverforge.studio.workspace import NotFound, Workspace

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running", "stopping")
INTERRUPTED = "interrupted"
KEEP_JOBS = 200
LOG_TAIL_LINES = 12
SHUTDOWN_WAIT_S = 30


@dataclass
class Job:
    id: str
    kind: str
    """'train', 'generate' or 'compare'."""
    title: str
    status: str = "queued"
    """queued | running | stopping | done | stopped | failed | interrupted (the studio died while it ran)."""
    message: str = ""
    created: float = field(default_factory=time.time)
    done: int = 0
    total: int = 0
    results: list[dict] = field(default_factory=list)
    """What the job made so far (candidates, comparison cells), in the order they finished."""
    run: str | None = None
    """Training: the run folder, workspace-relative."""
    log_path: Path | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen | None = None
    pid: int | None = None
    """A training's process id, kept in the record: after a restart, tells whether it still runs."""
    saver: Callable[[Job], None] | None = field(default=None, repr=False)
    """Writes the job's record; called on every change worth keeping across a restart."""

    def public(self) -> dict:
        return {"id": self.id, "kind": self.kind, "title": self.title, "status": self.status, "message": self.message,
                "created": self.created, "done": self.done, "total": self.total, "results": list(self.results), "run": self.run}

    def set(self, status: str, message: str | None = None) -> None:
        self.status = status
        if message is not None:
            self.message = message
        self.save()

    def add_result(self, result: dict) -> None:
        """One more image made: kept in the record at once, so a crash loses none that were shown."""
        self.results.append(result)
        self.done += 1
        self.save()

    def save(self) -> None:
        if self.saver is not None:
            self.saver(self)


class JobManager:
    def __init__(self, ws: Workspace):
        self.ws = ws
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._work: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._save_lock = threading.Lock()
        self._load()

    # --- bookkeeping ------------------------------------------------------------------------

    @property
    def folder(self) -> Path:
        return self.ws.output / "jobs"

    def _add(self, job: Job) -> Job:
        job.saver = self._save
        with self._lock:
            self.jobs[job.id] = job
            finished = sorted((j for j in self.jobs.values() if j.status not in ACTIVE), key=lambda j: j.created)
            for old in finished[: max(0, len(self.jobs) - KEEP_JOBS)]:
                del self.jobs[old.id]
        job.save()
        return job

    def _save(self, job: Job) -> None:
        """The job's record as studio/jobs/ID.json, written to a temporary file and renamed over
        the old one, so a reader (or a restart after a crash) sees the old record or the new, whole."""
        record = {**job.public(), "log": self.ws.rel(job.log_path) if job.log_path else None,
                  "pid": job.pid}
        with self._save_lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{job.id}.json.tmp"
            tmp.write_text(json.dumps(record), encoding="utf-8")
            os.replace(tmp, self.folder / f"{job.id}.json")

    def _load(self) -> None:
        """Jobs of earlier sessions, newest KEEP_JOBS; those that were still active are interrupted."""
        records = []
        for path in self.folder.glob("*.json") if self.folder.is_dir() else ():
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                job = Job(str(record["id"]), str(record["kind"]), str(record["title"]), str(record["status"]), str(record.get("message", "")),
                          float(record["created"]), int(record.get("done", 0)), int(record.get("total", 0)), list(record.get("results", [])),
                          record.get("run"))
            except (OSError, ValueError, KeyError, TypeError) as e:
                log.warning("studio: job record %s is unreadable (%s); skipped", path.name, e)
                continue
            if record.get("log"):
                job.log_path = self.ws.root / record["log"]
            job.pid = record.get("pid") if isinstance(record.get("pid"), int) else None
            records.append(job)
        records.sort(key=lambda j: j.created, reverse=True)
        for job in records[:KEEP_JOBS]:
            job.saver = self._save
            # Said again at every start: a trainer still running at the last one may have ended since.
            if job.status in ACTIVE or job.status == INTERRUPTED:
                message = _interrupted_message(job)
                if (job.status, job.message) != (INTERRUPTED, message):
                    job.set(INTERRUPTED, message)
            self.jobs[job.id] = job

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}: not one of the studio's last {KEEP_JOBS} jobs")
        return job

    def list(self) -> list[Job]:
        return sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)

    def training_for(self, run_rel: str) -> Job | None:
        """The newest training job of a run folder."""
        return next((j for j in self.list() if j.kind == "train" and j.run == run_rel), None)

    # --- generation work on the worker thread -------------------------------------------------

    def submit(self, kind: str, title: str, total: int, work: Callable[[Job], None]) -> Job:
        job = self._add(Job(secrets.token_hex(6), kind, title, total=total))
        self._work.put((job, work))
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work_loop, name="studio-worker", daemon=True)
            self._worker.start()
        return job

    def _work_loop(self) -> None:
        while True:
            job, work = self._work.get()
            if job is None:
                return
            if job.cancel.is_set():
                job.set("stopped")
                continue
            job.set("running")
            try:
                work(job)
                job.set("stopped" if job.cancel.is_set() else "done")
            except CoverforgeError as e:
                job.set("failed", str(e))
            except Exception as e:  # noqa: BLE001 - a job's failure is reported, the studio keeps serving
                log.exception("job %s (%s) failed", job.id, job.title)
                job.set("failed", f"internal error ({type(e).__name__}: {e}); the studio's log has the details")

    # --- trainings as subprocesses -------------------------------------------------------------

    def start_training(self, config: Path, run: Path, overrides: list[str], resume: bool) -> Job:
        run_rel = self.ws.rel(run)
        current = self.training_for(run_rel)
        if current is not None and current.status in ACTIVE:
            raise CoverforgeError(f"run {run_rel} is already training (job {current.id}); stop it first")
        if current is not None and current.pid and _still_training(current.pid, run_rel):
            raise CoverforgeError(f"run {run_rel} is still being trained by process {current.pid}, started before the studio restarted: "
                                  f"let it finish, or end it first")
        job = Job(secrets.token_hex(6), "train", f"{'resume' if resume else 'train'} {run_rel}", run=run_rel)
        job.log_path = self.ws.output / "jobs" / f"{job.id}.log"
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "coverforge", "train", str(config), *overrides, "--out", str(run), "--no-progress"]
        if resume:
            cmd += ["--resume", "latest"]
        with open(job.log_path, "w") as out:
            out.write("$ coverforge " + " ".join(cmd[3:]) + "\n")
            out.flush()
            # cwd = workspace: relative paths inside configs mean the same as on the command line.
            job.process = subprocess.Popen(cmd, cwd=self.ws.root, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        job.pid = job.process.pid
        job.status = "running"
        self._add(job)
        threading.Thread(target=self._watch_training, args=(job,), name=f"watch-{job.id}", daemon=True).start()
        return job

    def _watch_training(self, job: Job) -> None:
        self._finish_training(job, job.process.wait())

    def _finish_training(self, job: Job, rc: int) -> None:
        """The training's end as its job's status (from the watcher, or from shutdown, whichever is first)."""
        with self._lock:
            if job.status not in ACTIVE:
                return
            if job.cancel.is_set():
                job.set("stopped", "stopped; a checkpoint was written if training had begun")
            elif rc == 0:
                job.set("done", "finished")
            else:
                job.set("failed", self._failure_line(job, rc))

    @staticmethod
    def _failure_line(job: Job, rc: int) -> str:
        lines = [l.strip() for l in log_tail(job.log_path, 200) if l.strip()]
        errors = [l for l in lines if l.startswith("coverforge train: error:")]
        if errors:
            return errors[-1].removeprefix("coverforge train: error:").strip()
        return f"training exited with code {rc}: {lines[-1] if lines else 'no output'}"

    def stop(self, job_id: str) -> Job:
        """Ask a job to stop: SIGTERM to a training (it checkpoints; asked twice, SIGKILL), or the
        generation job's cancel flag (checked between images)."""
        job = self.get(job_id)
        if job.status not in ACTIVE:
            return job
        if job.process is not None:
            already = job.cancel.is_set()
            job.cancel.set()
            if job.process.poll() is None:
                job.process.send_signal(signal.SIGKILL if already else signal.SIGTERM)
                job.set("stopping")
        else:
            job.cancel.set()
            job.set("stopping" if job.status == "running" else "stopped")
        return job

    def shutdown(self) -> None:
        """Stop everything: trainings get SIGTERM and a while to write their checkpoint."""
        for job in list(self.jobs.values()):
            if job.status in ACTIVE:
                job.cancel.set()
                if job.process is not None and job.process.poll() is None:
                    job.process.send_signal(signal.SIGTERM)
        self._work.put((None, None))
        deadline = time.monotonic() + SHUTDOWN_WAIT_S
        for job in list(self.jobs.values()):
            if job.process is not None:
                try:
                    job.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    job.process.kill()
                self._finish_training(job, job.process.wait())
            elif job.status in ACTIVE:  # generation work the worker will not finish: its record says so
                job.set(INTERRUPTED, f"the studio was stopped; {job.done} of {job.total} images were made")


def _interrupted_message(job: Job) -> str:
    if job.kind != "train":
        return f"the studio stopped while this job ran; {job.done} of {job.total} images were made"
    if job.pid and _still_training(job.pid, job.run):
        return (f"the studio stopped while this trained; its process {job.pid} is still running and writes into {job.run}: "
                f"let it finish, or end it before resuming")
    return "the studio stopped while this trained; resume the run from its last checkpoint"


def _still_training(pid: int, run: str | None) -> bool:
    """Whether `pid` is still a `coverforge train` writing into `run` (Linux /proc; elsewhere: unknown, False)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"coverforge" in cmdline and b"train" in cmdline and any(run and arg.decode(errors="replace").endswith(run) for arg in cmdline)


def log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of a job's log (training prints warnings and its final message there)."""
    if path is None or not path.is_file():
        return []
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 64 * 1024))
        text = f.read().decode("utf-8", errors="replace")
    return text.splitlines()[-lines:]
