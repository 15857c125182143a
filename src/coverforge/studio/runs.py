"""What the Runs page shows about a run folder: status, steps, loss curve, grids, reports.

Read from the files training writes (config.toml, logs/metrics.jsonl, checkpoints/, samples/,
final/), so runs started from the command line show up exactly like the studio's own.
"""

from __future__ import annotations

import json
from pathlib import Path

from coverforge.errors import CoverforgeError
from coverforge.run_folder import RunFolder, checkpoint_step
from coverforge.studio.workspace import Workspace

MAX_CURVE_POINTS = 400


def read_metrics(run: Path) -> list[dict]:
    """The rows of logs/metrics.jsonl; a line being written right now (no newline yet) is skipped."""
    path = RunFolder(run).metrics_log
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "step" in row:
            rows.append(row)
    return rows


def loss_curve(rows: list[dict]) -> list[list[float]]:
    """[step, loss] pairs, thinned to at most MAX_CURVE_POINTS by taking every n-th."""
    points = [[r["step"], r["loss"]] for r in rows if isinstance(r.get("loss"), (int, float))]
    stride = max(1, -(-len(points) // MAX_CURVE_POINTS))
    thinned = points[::stride]
    if points and thinned[-1] != points[-1]:
        thinned.append(points[-1])
    return thinned


def checkpoints(run: Path) -> list[dict]:
    """Complete checkpoints (those with the marker training writes last), oldest first."""
    return [{"step": checkpoint_step(folder), "path": folder} for folder in RunFolder(run).complete_checkpoints()]


def run_config(run: Path) -> dict:
    """The few config values the studio shows; {} when the config cannot be read."""
    from coverforge.config import load_config

    try:
        cfg = load_config(RunFolder(run).config)
    except CoverforgeError:
        return {}
    return {"recipe": cfg.train.recipe, "model": cfg.model.path, "dataset": cfg.data.dataset, "max_steps": cfg.train.max_steps,
            "sample": {"sampler": cfg.sample.sampler, "steps": cfg.sample.steps, "guidance": cfg.sample.guidance_scale,
                       "negative": cfg.sample.negative_prompt}}


def run_status(run: Path, job_status: str | None) -> str:
    if job_status in ("queued", "running", "stopping"):
        return "training" if job_status != "stopping" else "stopping"
    folder = RunFolder(run)
    if folder.is_finished():
        return "finished"
    if job_status == "interrupted":  # the studio died while it trained; Resume goes on from the last checkpoint
        return "interrupted"
    if folder.checkpoint_folders():
        return "stopped"
    return "failed" if job_status == "failed" else "not started"


def run_summary(ws: Workspace, run: Path, job: dict | None = None, with_curve: bool = False) -> dict:
    rows = read_metrics(run)
    folder = RunFolder(run)
    last = rows[-1] if rows else {}
    cfg = run_config(run)
    ckpts = checkpoints(run)
    summary = {
        "path": ws.rel(run),
        "name": run.name,
        "status": run_status(run, job and job["status"]),
        "job": job,
        "step": max([last.get("step", 0), *(c["step"] for c in ckpts)]),
        "max_steps": cfg.get("max_steps"),
        "loss": last.get("loss"),
        "images_per_s": last.get("images_per_s"),
        "recipe": cfg.get("recipe", "?"),
        "model": cfg.get("model", ""),
        "dataset": cfg.get("dataset", ""),
        "sample": cfg.get("sample", {}),
        "checkpoints": [{"step": c["step"], "path": ws.rel(c["path"])} for c in ckpts],
        "finished": folder.is_finished(),
        "samples": [ws.rel(p) for p in sorted(folder.samples.glob("*.png"))],
        "loss_png": ws.rel(folder.loss_plot) if folder.loss_plot.is_file() else None,
        "reports": [ws.rel(p) for p in _reports(ws, run)],
        "updated": max((p.stat().st_mtime for p in (folder.config, folder.metrics_log) if p.exists()), default=0),
    }
    if with_curve:
        summary["curve"] = loss_curve(rows)
    return summary


def job_summary(job: dict) -> dict:
    """A studio training whose folder holds no config.toml yet (setting up, or failed early)."""
    from coverforge.studio.jobs import ACTIVE

    return {"path": job["run"], "name": job["run"].rsplit("/", 1)[-1], "status": "starting" if job["status"] in ACTIVE else job["status"],
            "job": job, "step": 0, "max_steps": None, "loss": None, "recipe": "", "checkpoints": [], "samples": [], "reports": [],
            "finished": False, "sample": {}, "updated": job["created"]}


def _reports(ws: Workspace, run: Path) -> list[Path]:
    """Evaluation reports written into the run folder (`coverforge evaluate RUN --out RUN/eval`), and
    one beside it (`coverforge demo --out DIR` writes DIR/report.html next to DIR/run/)."""
    found = []
    for depth in ("report.html", "*/report.html", "*/*/report.html"):
        found += [p for p in run.glob(depth) if RunFolder(run).checkpoints.name not in p.relative_to(run).parts]
    beside = run.parent / "report.html"
    if run != ws.root and beside.is_file() and beside.resolve().is_relative_to(ws.root):
        found.append(beside)
    return sorted(found)
