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
    lettering: str = "typeset"
    """With `covers`: typeset (coverforge sets title and author), model (the prompt asks the model to
    letter them; covers/model_lettering.py) or both, side by side with the read-back of each."""


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


def _render(gen: Generator, req: GenerationRequest, out: Path, tag: str, model_hash: str, lora_hash: str, lettered: bool = False) -> list[Path]:
    from tqdm.auto import tqdm

    sample = req.sample
    if req.aspect:
        width, height = size_for_aspect(req.aspect, gen.native_size, gen.size_multiple)
        sample = replace(sample, width=width, height=height)
    out.mkdir(parents=True, exist_ok=True)
    paths, images = [], []
    # Job j draws prompt j % n with seed + j: candidate k of book i gets seed + i + k * n, so the
    # first candidate has the seed it would have without candidates.
    from coverforge.covers.model_lettering import lettering_prompt

    n = len(req.prompts)
    own = [lettering_prompt(p, book) for p, book in zip(req.prompts, req.books)] if lettered else req.prompts
    prompts = own * req.candidates
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
        _typeset(images, seeds, paths, req, out / "covers", tag, lettered)
    return paths


def _typeset(images: list[Image.Image], seeds: list[int], paths: list[Path], req: GenerationRequest, out: Path, tag: str,
             lettered: bool = False) -> None:
    """Per book: every candidate typeset (or, `lettered`, taken as the model lettered it) and scored,
    the best kept as NNNNN-tag.png, all scores in NNNNN-tag.json beside it."""
    from coverforge.covers.candidates import choose, make_candidate
    from coverforge.covers.model_lettering import make_lettered_candidate

    build = make_lettered_candidate if lettered else make_candidate

    out.mkdir(parents=True, exist_ok=True)
    n = len(req.prompts)
    unread, stray = 0, 0
    for i, book in zip(range(n), req.books):
        jobs = range(i, len(images), n)
        candidates = [build(images[j], book, req.cover_size, seeds[j], paths[j].name) for j in jobs]
        best = choose(candidates)
        candidates[best].cover.image.save(out / f"{i:05d}-{tag}.png")
        record = {"title": book["title"], "chosen": best, "order": "legibility, then least stray text, then contrast",
                  "candidates": [c.to_dict() for c in candidates]}
        (out / f"{i:05d}-{tag}.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        unread += not candidates[best].legibility.title_reads
        stray += sum(c.stray.found for c in candidates)
    log.info("covers (%s): %d of %d titles read back at full size; stray text in %d of %d pieces of art", tag, n - unread, n, stray, len(images))


def _render_letterings(gen: Generator, req: GenerationRequest, out: Path, tag: str, model_hash: str, lora_hash: str) -> list[Path]:
    """The art (typeset when covers are asked for), the model-lettered covers, or both and how each read."""
    paths = []
    if not req.covers or req.lettering != "model":
        paths += _render(gen, req, out, tag, model_hash, lora_hash)
    if req.covers and req.lettering in ("model", "both"):
        paths += _render(gen, req, out, f"{tag}-lettered", model_hash, lora_hash, lettered=True)
    if req.covers and req.lettering == "both":
        _compare_lettering(out / "covers", tag, len(req.prompts))
    return paths


def _compare_lettering(folder: Path, tag: str, n: int) -> dict:
    """Per book, the chosen typeset and model-lettered covers' read-back side by side, and the totals
    (lettering-TAG.json); which reads better is what the OCR says, at full size and as a thumbnail."""
    from coverforge.covers.candidates import legibility_score

    books, totals = [], {"typeset": [0, 0.0], "model": [0, 0.0]}
    for i in range(n):
        row = {}
        for way, suffix in (("typeset", tag), ("model", f"{tag}-lettered")):
            record = json.loads((folder / f"{i:05d}-{suffix}.json").read_text(encoding="utf-8"))
            chosen = record["candidates"][record["chosen"]]
            row[way] = {"title_reads": chosen["legibility"]["title_reads"], "legibility": chosen["scores"]["legibility"],
                        "cover": f"{i:05d}-{suffix}.png"}
            totals[way][0] += chosen["legibility"]["title_reads"]
            totals[way][1] += chosen["scores"]["legibility"] / n
        row["title"] = record["title"]
        row["reads_better"] = max(("typeset", "model"), key=lambda w: (row[w]["legibility"], w == "typeset"))
        books.append(row)
    summary = {way: {"titles_read": t[0], "books": n, "mean_legibility": round(t[1], 4)} for way, t in totals.items()}
    (folder / f"lettering-{tag}.json").write_text(json.dumps({"summary": summary, "books": books}, indent=1, ensure_ascii=False) + "\n",
                                                  encoding="utf-8")
    log.info("lettering (%s): typeset covers read %d of %d titles (legibility %.2f); the model's own lettering %d of %d (%.2f)", tag,
             summary["typeset"]["titles_read"], n, summary["typeset"]["mean_legibility"], summary["model"]["titles_read"], n,
             summary["model"]["mean_legibility"])
    return summary


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
    tag = "tuned" if (compare_base or lora or run) else "base"
    paths = _render_letterings(gen, req, out, tag, model_hash, lora_hash)
    if base is not None:
        paths += _render_letterings(base(), req, out, "base", model_hash, "")
    (out / "request.json").write_text(json.dumps(asdict(req), indent=2))
    return paths
