"""Generation jobs: many prompts in batches, PNGs that carry their parameters, a contact sheet,
base-vs-fine-tuned comparisons and typeset covers."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from coverforge.config import SampleConfig
from coverforge.errors import CoverforgeError
from coverforge.hashing import weights_hash
from coverforge.image_grid import image_grid
from coverforge.run_folder import RunFolder
from coverforge.sampling.generate import Generator, generate

log = logging.getLogger(__name__)


@dataclass
class GenerationRequest:
    """A generation job: what to draw (`sample` says how each image is drawn) and what to make of it."""

    prompts: list[str]
    sample: SampleConfig = field(default_factory=SampleConfig)
    books: list[dict] = field(default_factory=list)
    seed: int = 0
    aspect: str | None = None
    """W:H; sets width and height at the model's pixel area (over sample.width/height)."""
    batch_size: int = 4
    covers: bool = False
    cover_size: str = "ebook"
    candidates: int = 1
    """Art drawn per book; with `covers`, the best-scoring cover is kept (covers.candidates)."""


def size_for_aspect(aspect: str, native: int, multiple: int) -> tuple[int, int]:
    """Width and height with the model's native pixel area and the requested W:H ratio."""
    try:
        w, h = (float(x) for x in aspect.split(":"))
    except ValueError:
        raise CoverforgeError(f"--aspect {aspect!r} must look like 2:3") from None
    area = native * native
    width = round((area * w / h) ** 0.5 / multiple) * multiple
    height = round((area * h / w) ** 0.5 / multiple) * multiple
    return max(multiple, width), max(multiple, height)


def save_png(image: Image.Image, path: Path, params: dict) -> None:
    """PNG with its parameters as text chunks ('parameters' as A1111 writes it, plus JSON)."""
    info = PngInfo()
    info.add_text("parameters", f"{params['prompt']}\nNegative prompt: {params['negative_prompt']}\n"
                  f"Steps: {params['steps']}, Sampler: {params['sampler']}, CFG scale: {params['guidance_scale']}, "
                  f"Seed: {params['seed']}, Size: {image.width}x{image.height}, Model hash: {params['model_hash']}")
    info.add_text("coverforge", json.dumps(params))
    image.save(path, pnginfo=info)


def _render(gen: Generator, req: GenerationRequest, out: Path, tag: str, model_hash: str, lora_hash: str) -> list[Path]:
    from tqdm.auto import tqdm

    sample = req.sample
    if req.aspect:
        width, height = size_for_aspect(req.aspect, gen.native_size, gen.size_multiple)
        sample = replace(sample, width=width, height=height)
    out.mkdir(parents=True, exist_ok=True)
    paths, images = [], []
    # Job j draws prompt j % n with seed + j: candidate k of book i gets seed + i + k * n, so the
    # first candidate has the seed it would have without candidates.
    n = len(req.prompts)
    prompts = req.prompts * req.candidates
    seeds = [req.seed + j for j in range(len(prompts))]
    for start in tqdm(range(0, len(prompts), req.batch_size), desc=f"generating {tag}", unit="batch"):
        batch = slice(start, start + req.batch_size)
        made = generate(gen, prompts[batch], seeds[batch], sample, progress=True)  # a bar over each batch's steps
        for j, image in enumerate(made, start):
            params = {"prompt": prompts[j], "negative_prompt": sample.negative_prompt, "seed": seeds[j], "steps": sample.steps,
                      "sampler": sample.sampler, "guidance_scale": sample.guidance_scale, "model_hash": model_hash,
                      "lora_hash": lora_hash, "lora_scale": sample.lora_scale, "variant": tag}
            path = out / f"{j % n:05d}-{tag}-seed{seeds[j]}.png"
            save_png(image, path, params)
            paths.append(path)
            images.append(image)
    labels = [f"seed {seed}" for seed in seeds[: len(images)]]
    image_grid(images, cols=min(8, len(images)), labels=labels, cell=max(images[0].size)).save(out / f"contact-{tag}.png")
    if req.covers:
        _typeset(images, seeds, paths, req, out / "covers", tag)
    return paths


def _typeset(images: list[Image.Image], seeds: list[int], paths: list[Path], req: GenerationRequest, out: Path, tag: str) -> None:
    """Per book: every candidate typeset and scored, the best kept as NNNNN-tag.png, all scores in
    NNNNN-tag.json beside it."""
    from coverforge.covers.candidates import choose, make_candidate

    out.mkdir(parents=True, exist_ok=True)
    n = len(req.prompts)
    unread, stray = 0, 0
    for i, book in zip(range(n), req.books):
        jobs = range(i, len(images), n)
        candidates = [make_candidate(images[j], book, req.cover_size, seeds[j], paths[j].name) for j in jobs]
        best = choose(candidates)
        candidates[best].cover.image.save(out / f"{i:05d}-{tag}.png")
        record = {"title": book["title"], "chosen": best, "order": "legibility, then least stray text, then contrast",
                  "candidates": [c.to_dict() for c in candidates]}
        (out / f"{i:05d}-{tag}.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        unread += not candidates[best].legibility.title_reads
        stray += sum(c.stray.found for c in candidates)
    log.info("covers (%s): %d of %d titles read back at full size; stray text in %d of %d pieces of art", tag, n - unread, n, stray, len(images))


def run_generation(req: GenerationRequest, out: Path, run: str | None = None, model: str | None = None, lora: str | None = None,
                   fuse: bool = False, config_folder: str = "", compare_base: bool = False) -> list[Path]:
    from coverforge.sampling.from_run import load_model_generator, load_run_generator

    if run:
        gen, cfg = load_run_generator(run, req.sample.lora_scale, fuse)
        folder = RunFolder(run)
        model_hash = weights_hash(cfg.model.path) if cfg.train.recipe == "lora" else weights_hash(folder.final_model)
        lora_hash = weights_hash(folder.final_lora) if folder.final_lora.exists() else ""
        base = (lambda: load_run_generator(run, base=True)[0]) if compare_base else None
    else:
        gen = load_model_generator(model, lora, req.sample.lora_scale, fuse, config_folder=config_folder)
        model_hash, lora_hash = weights_hash(model), weights_hash(lora) if lora else ""
        base = (lambda: load_model_generator(model, config_folder=config_folder)) if compare_base else None
    paths = _render(gen, req, out, "tuned" if (compare_base or lora or run) else "base", model_hash, lora_hash)
    if base is not None:
        paths += _render(base(), req, out, "base", model_hash, "")
    (out / "request.json").write_text(json.dumps(asdict(req), indent=2))
    return paths
