"""Candidates and comparisons through the one generation function (`sampling.generate`).

A model is a run's final weights, one of its checkpoints, or a base model folder with an
optional LoRA file; each is loaded by `sampling.from_run` as `coverforge generate` loads it.
Images are made one at a time so that the page can show each as it finishes, and each is saved
with its parameters in the PNG (`sampling.batch.save_png`), as the command line saves them.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

from coverforge.config import SampleConfig
from coverforge.errors import CoverforgeError
from coverforge.run_folder import RunFolder, checkpoint_step
from coverforge.studio.jobs import Job
from coverforge.studio.workspace import Workspace

LOADED_MODELS = 1  # kept in memory between jobs: an SDXL model in fp32 alone is about 14 GB
CANDIDATES_FILE = "candidates.json"
"""Beside a generation job's images: what they are, so the Cover page finds them after a restart."""


@dataclass(frozen=True)
class ModelChoice:
    kind: str
    """'run' (final weights), 'checkpoint' (a run's checkpoint folder) or 'model' (base folder)."""
    path: str
    """Workspace-relative folder."""
    lora: str = ""
    """With kind 'model': a LoRA file or folder, workspace-relative."""
    lora_scale: float = 1.0

    @property
    def label(self) -> str:
        if self.kind == "checkpoint":
            path = Path(self.path)
            return f"{path.parent.parent.as_posix()} @ {checkpoint_step(path)}"
        return f"{self.path} + {self.lora}" if self.lora else self.path


@dataclass(frozen=True)
class SampleSettings:
    seeds: tuple[int, ...]
    sample: SampleConfig
    aspect: str = "2:3"
    """W:H at the model's native pixel area; empty for the native square."""


class Models:
    """Loaded generators, the most recently used kept, each with its weights' hash."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self._loaded: OrderedDict[ModelChoice, tuple] = OrderedDict()

    def load(self, choice: ModelChoice):
        if choice in self._loaded:
            self._loaded.move_to_end(choice)
            return self._loaded[choice]
        entry = self._load(choice)
        self._loaded[choice] = entry
        while len(self._loaded) > LOADED_MODELS:
            self._loaded.popitem(last=False)
        return entry

    def _load(self, choice: ModelChoice) -> tuple:
        from coverforge.sampling.batch import weights_hash
        from coverforge.sampling.from_run import is_run_folder, load_checkpoint_generator, load_model_generator, load_run_generator

        path = self.ws.path(choice.path, "model")
        if choice.kind == "run":
            if not is_run_folder(path):
                raise CoverforgeError(f"run {choice.path} has no final weights yet: finish (or resume) its training, or pick a checkpoint")
            gen, cfg = load_run_generator(path, choice.lora_scale)
            return gen, weights_hash(RunFolder(path).final_weights(cfg.train.recipe))
        if choice.kind == "checkpoint":
            from coverforge.training.checkpoint import verify

            problem = verify(path)
            if problem:
                raise CoverforgeError(f"checkpoint {choice.path} cannot be used: {problem}")
            return load_checkpoint_generator(path), weights_hash(path)
        if choice.kind == "model":
            lora = str(self.ws.path(choice.lora, "LoRA")) if choice.lora else None
            gen = load_model_generator(str(path), lora, choice.lora_scale)
            return gen, weights_hash(path) + (f"+{weights_hash(lora)}" if lora else "")
        raise CoverforgeError(f"model kind {choice.kind!r}: use run, checkpoint or model")


def image_size(gen, aspect: str) -> tuple[int, int]:
    from coverforge.sampling.batch import size_for_aspect

    if not aspect:
        return gen.native_size, gen.native_size
    return size_for_aspect(aspect, gen.native_size, gen.size_multiple)


def render(gen, model_hash: str, book: dict, seed: int, s: SampleSettings, out: Path, name: str):
    """One image for one book and seed, saved with its parameters; returns (image, path)."""
    from coverforge.sampling.batch import save_png
    from coverforge.sampling.generate import generate

    width, height = image_size(gen, s.aspect)
    sample = replace(s.sample, width=width, height=height)
    image = generate(gen, [book["prompt"]], [seed], sample)[0]
    params = {"prompt": book["prompt"], "negative_prompt": sample.negative_prompt, "seed": seed, "steps": sample.steps,
              "sampler": sample.sampler, "guidance_scale": sample.guidance_scale, "model_hash": model_hash, "lora_hash": "", "lora_scale": 1.0, "variant": "studio",
              "title": book["title"], "author": book["author"]}
    path = out / f"{name}.png"
    save_png(image, path, params)
    return image, path


def candidates_work(ws: Workspace, models: Models, choice: ModelChoice, books: list[dict], s: SampleSettings):
    """The job body of Generate: every book with every seed, one candidate at a time."""
    from coverforge.covers.stray_text import find_stray_text  # pseudo-lettering the model painted in

    def work(job: Job) -> None:
        out = ws.output_dir("generations", job.id)
        gen, model_hash = models.load(choice)
        for b, book in enumerate(books):
            for seed in s.seeds:
                if job.cancel.is_set():
                    return
                image, path = render(gen, model_hash, book, seed, s, out, f"{b:03d}-seed{seed}")
                job.add_result({"book": b, "title": book["title"], "author": book["author"], "genres": book["genres"],
                                "description": book["description"], "seed": seed, "path": ws.rel(path),
                                "width": image.width, "height": image.height, "model": choice.label,
                                "stray_text": find_stray_text(image).to_dict()})
                (out / CANDIDATES_FILE).write_text(json.dumps({"job": job.id, "created": job.created, "candidates": job.results}))
    return work


def saved_candidates(ws: Workspace, limit: int = 500) -> list[dict]:
    """Candidates of every generation job in the workspace, newest job first."""
    jobs = []
    for file in (ws.output / "generations").glob(f"*/{CANDIDATES_FILE}"):
        try:
            jobs.append(json.loads(file.read_text()))
        except (OSError, json.JSONDecodeError):
            continue  # being written right now: the next poll reads it
    jobs.sort(key=lambda j: j.get("created", 0), reverse=True)
    return [c for j in jobs for c in j.get("candidates", [])][:limit]


def compare_work(ws: Workspace, models: Models, choices: list[ModelChoice], books: list[list[dict]], s: SampleSettings):
    """The job body of Compare: the same books and seeds through every chosen model; `books[v]`
    are the books with the prompts model v was trained on."""
    def work(job: Job) -> None:
        out = ws.output_dir("comparisons", job.id)
        for v, choice in enumerate(choices):
            gen, model_hash = models.load(choice)
            for b, book in enumerate(books[v]):
                for seed in s.seeds:
                    if job.cancel.is_set():
                        return
                    image, path = render(gen, model_hash, book, seed, s, out, f"{v:02d}-{b:03d}-seed{seed}")
                    job.add_result({"variant": v, "model": choice.label, "book": b, "title": book["title"], "seed": seed,
                                    "path": ws.rel(path), "width": image.width, "height": image.height})
    return work
