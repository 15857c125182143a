"""The studio's JSON API: every action of the pages, usable on its own (curl, scripts).

Inputs are typed request models (an out-of-range value is a 400 with one line naming the field);
paths are workspace-relative and resolved by `Workspace.path`; the work itself is done by the
library (`training` through the CLI's subprocess, `sampling`, `covers`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from coverforge.config import SampleConfig
from coverforge.errors import CoverforgeError
from coverforge.run_folder import RunFolder
from coverforge.studio import books as book_sources
from coverforge.studio import runs as run_info
from coverforge.studio import typesetting
from coverforge.studio.generation import ModelChoice, SampleSettings, candidates_work, compare_work, saved_candidates
from coverforge.studio.jobs import log_tail
from coverforge.studio.workspace import NotFound

router = APIRouter()

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
# The config fields the Runs page lets an editor change before starting a training.
EDITABLE = {
    "model.path": str, "data.dataset": str, "train.max_steps": int, "run.max_minutes": float, "train.batch_size": int,
    "train.lr_unet": float, "run.checkpoint_every": int, "train.seed": int, "lora.rank": int, "sample.every": int,
}
MAX_IMAGES_PER_JOB = 64
MAX_SEEDS = 16
SAMPLE_DEFAULTS = SampleConfig()
"""Read from an instance: a slotted dataclass has no class-level field defaults."""


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelIn(Body):
    kind: Literal["run", "checkpoint", "model"]
    path: str
    lora: str = ""
    lora_scale: float = Field(1.0, ge=0.0, le=2.0)

    def choice(self) -> ModelChoice:
        return ModelChoice(self.kind, self.path, self.lora, self.lora_scale)


class TypedBook(Body):
    title: str
    author: str = ""
    genres: str = ""
    blurb: str = ""


class SamplingIn(Body):
    seeds: str = Field("0..3", description="'0..3' or '0,5,9'")
    steps: int = Field(SAMPLE_DEFAULTS.steps, ge=1, le=200)
    guidance: float = Field(SAMPLE_DEFAULTS.guidance_scale, ge=0.0, le=30.0)
    sampler: str = SAMPLE_DEFAULTS.sampler
    negative: str = Field("", max_length=2000)
    aspect: str = Field("2:3", max_length=16)

    def settings(self) -> SampleSettings:
        from coverforge.config import SAMPLERS

        if self.sampler not in SAMPLERS:
            raise CoverforgeError(f"sampler {self.sampler!r}: choose one of {', '.join(SAMPLERS)}")
        if self.aspect:
            ratio = re.fullmatch(r"(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)", self.aspect.strip())
            if ratio is None or not 0.25 <= float(ratio[1]) / max(float(ratio[2]), 1e-9) <= 4:
                raise CoverforgeError(f"aspect {self.aspect!r} must look like 2:3 (width:height, between 1:4 and 4:1)")
        sample = SampleConfig(sampler=self.sampler, steps=self.steps, guidance_scale=self.guidance, negative_prompt=self.negative)
        return SampleSettings(parse_seeds(self.seeds), sample, self.aspect)


class GenerateIn(SamplingIn):
    model: ModelIn
    source: str = ""
    """Dataset split folder or catalogue CSV; with `books`."""
    books: list[int] = Field(default_factory=list, max_length=16)
    book: TypedBook | None = None


class CompareIn(SamplingIn):
    models: list[ModelIn] = Field(min_length=1, max_length=8)
    source: str
    books: list[int] = Field(min_length=1, max_length=8)
    seeds: str = "0"


class TrainIn(Body):
    config: str
    run_name: str
    fields: dict[str, str | int | float | bool] = Field(default_factory=dict)


class ResumeIn(Body):
    run: str
    max_steps: int | None = Field(None, ge=1)


class CoverIn(Body):
    art: str
    title: str = Field(max_length=300)
    author: str = Field("", max_length=300)
    subtitle: str = Field("", max_length=300)
    layout: str = ""
    font: str = Field("", max_length=64)
    genre: str = Field("", max_length=100)
    format: Literal["ebook", "print", "wrap"] = "ebook"
    trim: str = Field("6x9in", max_length=32)
    pages: int = Field(300, ge=1, le=2000)
    paper: Literal["white", "cream"] = "white"
    back_text: str = Field("", max_length=6000)


def parse_seeds(spec: str) -> tuple[int, ...]:
    from coverforge.evaluation.runs import parse_seeds as parse

    try:
        seeds = parse(spec.strip())
    except CoverforgeError:
        raise CoverforgeError(f"seeds {spec!r} must look like 0..3 or 0,5,9") from None
    if not 1 <= len(seeds) <= MAX_SEEDS or any(s < 0 or s >= 2**32 for s in seeds):
        raise CoverforgeError(f"seeds {spec!r}: give 1 to {MAX_SEEDS} seeds between 0 and 4294967295")
    return tuple(seeds)


def _state(request: Request):
    return request.app.state.studio


# --- runs and training ---------------------------------------------------------------------------


@router.get("/api/runs")
def list_runs(request: Request) -> dict:
    st = _state(request)
    out = []
    for run in st.ws.run_folders():
        job = st.jobs.training_for(st.ws.rel(run))
        out.append(run_info.run_summary(st.ws, run, job and job.public()))
    # A studio training still setting up, or one that failed before writing its folder, has no
    # config.toml: show it from its job, so the editor sees it start, or why it failed.
    listed = {r["path"] for r in out}
    for job in st.jobs.list():
        if job.kind == "train" and job.run not in listed:
            out.append(run_info.job_summary(job.public()))
            listed.add(job.run)
    return {"runs": sorted(out, key=lambda r: r["updated"], reverse=True)}


@router.get("/api/run")
def run_detail(request: Request, path: str) -> dict:
    st = _state(request)
    run = st.ws.path(path, "run", must_exist=False)
    job = st.jobs.training_for(st.ws.rel(run))
    if RunFolder(run).is_run():
        summary = run_info.run_summary(st.ws, run, job and job.public(), with_curve=True)
    elif job is not None:
        summary = {**run_info.job_summary(job.public()), "curve": []}
    else:
        raise NotFound(f"{path} is not a run folder (no config.toml)")
    summary["log"] = log_tail(job.log_path) if job else []
    return summary


@router.get("/api/configs")
def list_configs(request: Request) -> dict:
    from coverforge.config import load_config

    st = _state(request)
    out = []
    for path in st.ws.configs():
        entry = {"path": st.ws.rel(path), "name": path.stem}
        try:
            cfg = load_config(path)
        except CoverforgeError as e:
            entry["error"] = str(e)
        else:
            entry["recipe"] = cfg.train.recipe
            entry["fields"] = {name: getattr(getattr(cfg, name.split(".")[0]), name.split(".")[1]) for name in EDITABLE}
        out.append(entry)
    return {"configs": out, "editable": list(EDITABLE)}


def _override(name: str, value) -> str:
    import tomli_w

    if name not in EDITABLE:
        raise CoverforgeError(f"field {name} cannot be set from the studio; editable: {', '.join(EDITABLE)}")
    if isinstance(value, str) and EDITABLE[name] is not str:
        try:
            value = EDITABLE[name](value)
        except ValueError:
            raise CoverforgeError(f"{name} = {value!r} must be a number") from None
    return f"{name}={tomli_w.dumps({'v': value})[4:].strip()}"


@router.post("/api/train")
def start_training(request: Request, body: TrainIn) -> dict:
    from coverforge.config import load_config

    st = _state(request)
    config = st.ws.path(body.config, "config")
    if not RUN_NAME.match(body.run_name):
        raise CoverforgeError(f"run name {body.run_name!r}: use letters, digits, '.', '_' and '-' (at most 80)")
    run = st.ws.root / "runs" / body.run_name
    if RunFolder(run).is_run():
        raise CoverforgeError(f"run runs/{body.run_name} already exists: resume it from its row, or choose another name")
    overrides = [_override(k, v) for k, v in body.fields.items() if v != ""]
    load_config(config, overrides)  # a typo fails here with the config's own message, not in the job
    job = st.jobs.start_training(config, run, overrides, resume=False)
    return job.public()


@router.post("/api/resume")
def resume_training(request: Request, body: ResumeIn) -> dict:
    from coverforge.training.checkpoint import resolve_checkpoint

    st = _state(request)
    run = st.ws.path(body.run, "run")
    folder = RunFolder(run)
    if not folder.is_run():
        raise CoverforgeError(f"{body.run} is not a run folder (no {folder.config.name})")
    resolve_checkpoint(run, "latest")  # fails with one line when there is nothing to resume from
    overrides = [f"train.max_steps={body.max_steps}"] if body.max_steps else []
    return st.jobs.start_training(folder.config, run, overrides, resume=True).public()


# --- jobs -------------------------------------------------------------------------------------------


@router.get("/api/jobs")
def list_jobs(request: Request) -> dict:
    return {"jobs": [j.public() for j in _state(request).jobs.list()]}


@router.get("/api/jobs/{job_id}")
def get_job(request: Request, job_id: str) -> dict:
    job = _state(request).jobs.get(job_id)
    out = job.public()
    if job.kind == "train":
        out["log"] = log_tail(job.log_path)
    return out


@router.post("/api/jobs/{job_id}/stop")
def stop_job(request: Request, job_id: str) -> dict:
    return _state(request).jobs.stop(job_id).public()


# --- models, books, generation, comparison ------------------------------------------------------


@router.get("/api/models")
def list_models(request: Request) -> dict:
    st = _state(request)
    runs = []
    for run in st.ws.run_folders():
        ckpts = [{"step": c["step"], "path": st.ws.rel(c["path"])} for c in run_info.checkpoints(run)]
        runs.append({"path": st.ws.rel(run), "finished": RunFolder(run).is_finished(), "checkpoints": ckpts})
    return {"runs": runs, "models": [st.ws.rel(p) for p in st.ws.model_folders()], "loras": [st.ws.rel(p) for p in st.ws.lora_files()]}


@router.get("/api/book-sources")
def list_book_sources(request: Request) -> dict:
    st = _state(request)
    return {"sources": [{"path": st.ws.rel(p), "kind": "catalogue" if p.suffix.lower() == ".csv" else "dataset"} for p in st.ws.book_sources()]}


def _recipe(st, run: str) -> tuple:
    """The prompt recipe for catalogues and typed books: that of the dataset `run` (a run folder
    or one of its checkpoints, workspace-relative) was trained on; the default without a run."""
    if not run:
        return book_sources.recipe_of(None, "")
    return book_sources.recipe_of(book_sources.run_dataset(st.ws, st.ws.path(run, "run")), f"data.dataset of run {run}")


def _trained_on(st, choice: ModelChoice) -> str:
    """The run whose dataset recipe prompts `choice`: itself for a run or checkpoint; none for a base model."""
    return choice.path if choice.kind in ("run", "checkpoint") else ""


@router.get("/api/books")
def list_books(request: Request, source: str, q: str = "", run: str = "", limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict:
    """The books of a dataset split or catalogue; `run`: read a catalogue with the recipe of that run's dataset."""
    st = _state(request)
    path = st.ws.path(source, "book source")
    recipe, note = _recipe(st, run)
    found = book_sources.read_books(path, recipe)
    if path.is_dir():
        note = "prompts are the dataset's own training text"
    if q:
        words = q.casefold().split()
        found = [b for b in found if all(w in f"{b['title']} {b['author']} {' '.join(b['genres'])}".casefold() for w in words)]
    return {"total": len(found), "prompts": note, "books": [{**b, "description": b["description"][:400]} for b in found[:limit]]}


def _books_for(st, body: GenerateIn | CompareIn, run: str) -> list[dict]:
    """The chosen books with the prompts of `run`'s dataset recipe (the default recipe without a run)."""
    typed = getattr(body, "book", None)
    recipe = _recipe(st, run)[0]
    if typed is not None:
        return [book_sources.typed_book(typed.title, typed.author, typed.genres, typed.blurb, recipe)]
    if not body.source or not body.books:
        raise CoverforgeError("no book: pick one or more books from a dataset or catalogue, or type a title")
    return book_sources.pick_books(st.ws.path(body.source, "book source"), body.books, recipe)


@router.post("/api/generate")
def start_generation(request: Request, body: GenerateIn) -> dict:
    st = _state(request)
    settings = body.settings()
    choice = body.model.choice()
    st.ws.path(choice.path, "model")  # fail now, not in the queue
    chosen = _books_for(st, body, _trained_on(st, choice))
    total = len(chosen) * len(settings.seeds)
    if total > MAX_IMAGES_PER_JOB:
        raise CoverforgeError(f"{total} images asked for: at most {MAX_IMAGES_PER_JOB} per job (fewer books or seeds)")
    title = f"{len(chosen)} book{'s' * (len(chosen) > 1)} x {len(settings.seeds)} seeds with {choice.label}"
    return st.jobs.submit("generate", title, total, candidates_work(st.ws, st.models, choice, chosen, settings)).public()


@router.get("/api/candidates")
def list_candidates(request: Request) -> dict:
    """Every generated candidate in the workspace (this session's and earlier ones), newest first."""
    return {"candidates": saved_candidates(_state(request).ws)}


@router.post("/api/compare")
def start_comparison(request: Request, body: CompareIn) -> dict:
    st = _state(request)
    settings = body.settings()
    choices = [m.choice() for m in body.models]
    for c in choices:
        st.ws.path(c.path, "model")
    # Each run gets the prompts it was trained on; a base model, those of the first run beside it
    # (like with like), or the default recipe when no run is compared.
    runs = [_trained_on(st, c) for c in choices]
    books_per_model = [_books_for(st, body, run or next((r for r in runs if r), "")) for run in runs]
    chosen = books_per_model[0]
    total = len(choices) * len(chosen) * len(settings.seeds)
    if total > MAX_IMAGES_PER_JOB:
        raise CoverforgeError(f"{total} images asked for: at most {MAX_IMAGES_PER_JOB} per comparison (fewer models, books or seeds)")
    title = f"{len(choices)} models x {len(chosen)} books x {len(settings.seeds)} seeds"
    return st.jobs.submit("compare", title, total, compare_work(st.ws, st.models, choices, books_per_model, settings)).public()


# --- covers ---------------------------------------------------------------------------------------


@router.get("/api/layouts")
def list_layouts() -> dict:
    return {"layouts": typesetting.layouts(), "formats": list(typesetting.FORMATS)}


@router.get("/api/fonts")
def list_fonts() -> dict:
    """The bundled fonts a cover's title and author may be set in instead of the layout's faces."""
    return {"fonts": typesetting.fonts()}


@router.post("/api/uploads")
async def upload_art(request: Request) -> dict:
    """The image file as the request body (no multipart): counted while it streams in."""
    limit = typesetting.MAX_UPLOAD_BYTES
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise CoverforgeError(f"upload of {_bytes(int(declared))}: the studio takes images up to {_bytes(limit)}")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise CoverforgeError(f"upload is larger than {_bytes(limit)}: the studio takes images up to that size")
    if not data:
        raise CoverforgeError("the upload is empty: send the image file as the request body")
    st = _state(request)
    from starlette.concurrency import run_in_threadpool

    path = await run_in_threadpool(typesetting.save_upload, st.ws, bytes(data))
    return {"path": st.ws.rel(path)}


def _bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


@router.post("/api/covers")
def make_cover(request: Request, body: CoverIn) -> dict:
    st = _state(request)
    return typesetting.make(st.ws, typesetting.CoverSpec(**body.model_dump()))


# --- files ----------------------------------------------------------------------------------------


@router.get("/files/{path:path}")
def workspace_file(request: Request, path: str, download: bool = False) -> FileResponse:
    st = _state(request)
    file = st.ws.path(path, "file")
    if not file.is_file():
        raise NotFound(f"{path} is a folder, not a file")
    return FileResponse(file, filename=file.name if download else None,
                        content_disposition_type="attachment" if download else "inline")
