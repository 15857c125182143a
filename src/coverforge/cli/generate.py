"""`coverforge generate`: cover art from prompts, a text file or a catalogue CSV, with a run
folder's model or a base model plus LoRA; optionally typeset into finished covers."""

import argparse
from pathlib import Path

MAX_CANDIDATES = 64  # each candidate is a full generation plus three OCR passes


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="run folder written by `coverforge train`")
    src.add_argument("--model", help="diffusers folder, .safetensors file (with --config-folder) or hub id")
    p.add_argument("--config-folder", default="", help="configs for a single-file --model")
    p.add_argument("--lora", help="LoRA file or folder (diffusers or kohya keys) for --model")
    p.add_argument("overrides", nargs="*", help="sample.* settings, e.g. sample.sampler=dpm++2m sample.steps=20 (start: the "
                   "run's own [sample] section with --run, else the defaults); the flags below set the same fields and win")
    p.add_argument("--lora-scale", type=float, help="sample.lora_scale")
    p.add_argument("--fuse-lora", action="store_true", help="merge the LoRA into the weights (no per-step overhead)")
    p.add_argument("--prompt", action="append", default=[], help="a prompt (repeatable)")
    p.add_argument("--prompts-file", help="text file, one prompt per line")
    p.add_argument("--catalogue", help="catalogue CSV: each row becomes the prompt the model was trained on")
    p.add_argument("--dataset", help="with --catalogue: the dataset folder `prepare` wrote, whose template and column map "
                   "rebuild the prompts (default: the run's data.dataset)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N catalogue rows / prompts")
    p.add_argument("--negative", help="negative prompt (sample.negative_prompt)")
    p.add_argument("--sampler", help="sample.sampler")
    p.add_argument("--steps", type=int, help="sample.steps")
    p.add_argument("--guidance", type=float, help="sample.guidance_scale")
    p.add_argument("--seed", type=int, default=0, help="image i gets seed + i (with --candidates K over n books: book i's candidate k gets seed + i + k*n)")
    p.add_argument("--width", type=int, help="sample.width (0: the model's native size)")
    p.add_argument("--height", type=int, help="sample.height")
    p.add_argument("--aspect", help="W:H cover aspect, e.g. 2:3; sets width/height at the model's pixel area")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--compare-base", action="store_true", help="also render the base model with the same seeds")
    p.add_argument("--covers", action="store_true", help="typeset title and author into finished covers")
    p.add_argument("--lettering", choices=["typeset", "model", "both"], default="typeset",
                   help="with --covers: typeset title and author (default), ask the model to letter them (Qwen-Image, Z-Image "
                        "render text), or both side by side with the OCR read-back of each (covers/lettering-*.json)")
    p.add_argument("--title", help="title for --covers with --prompt")
    p.add_argument("--author", default="", help="author for --covers with --prompt")
    p.add_argument("--cover-size", default="ebook", help="ebook | WxHin | WxHpx")
    p.add_argument("--candidates", type=int, default=1,
                   help="with --covers: art drawn per book; the cover that reads best (then least stray text, then contrast) is kept, every candidate's scores in covers/*.json")
    p.add_argument("--out", required=True, help="output folder")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from coverforge.cli import checks
    from coverforge.config import SAMPLERS, SCHEDULE_STEPS
    from coverforge.data.text_files import read_text
    from coverforge.errors import CoverforgeError
    from coverforge.sampling.batch import GenerationRequest, run_generation

    # Every number is checked before a model loads: a bad one costs a second, not a model load.
    for flag, value, low, high in (("--steps", args.steps, 1, SCHEDULE_STEPS), ("--guidance", args.guidance, 0, None),
                                   ("--lora-scale", args.lora_scale, None, None), ("--width", args.width, 0, None),
                                   ("--height", args.height, 0, None)):
        if value is not None:
            checks.in_range(flag, value, low, high)
    checks.in_range("--batch-size", args.batch_size, 1)
    checks.in_range("--limit", args.limit, 0)
    checks.in_range("--candidates", args.candidates, 1, MAX_CANDIDATES)
    if args.candidates > 1 and not args.covers:
        raise CoverforgeError("--candidates chooses between typeset covers: add --covers")
    if args.lettering != "typeset" and not args.covers:
        raise CoverforgeError(f"--lettering {args.lettering} makes covers: add --covers")
    if args.aspect:
        _check_aspect(args.aspect)
    if args.sampler is not None and args.sampler not in SAMPLERS:
        raise CoverforgeError(f"--sampler {args.sampler!r} is not known; choose one of {', '.join(SAMPLERS)}")
    sample = _sample_settings(args)
    checks.output_folder(args.out)
    if args.covers:
        from coverforge.covers.sizes import parse_size

        parse_size(args.cover_size)  # a size that cannot work fails now, not after every image is drawn
    books = []
    prompts = list(args.prompt)
    if args.prompts_file:
        prompts += [line.strip() for line in read_text(args.prompts_file, "--prompts-file").splitlines() if line.strip()]
    if args.dataset and not args.catalogue:
        raise CoverforgeError("--dataset only tells --catalogue how prompts were built: add --catalogue CSV")
    if args.catalogue:
        from coverforge.data.prompt_recipe import catalogue_prompts, recipe_for

        named_by = "--dataset" if args.dataset else (f"data.dataset of run {args.run}" if args.run else f"data.dataset in {args.lora}'s metadata")
        dataset = args.dataset or _run_dataset(args.run) or _lora_dataset(args.lora)
        books, catalogue_texts = catalogue_prompts(args.catalogue, recipe_for(dataset, named_by))
        prompts += catalogue_texts
    elif args.title:
        books = [{"title": args.title, "authors": [args.author] if args.author else [], "genres": []}] * len(prompts)
    if args.limit:
        prompts, books = prompts[: args.limit], books[: args.limit]
    if not prompts:
        raise CoverforgeError("no prompts: give --prompt, --prompts-file or --catalogue")
    if args.covers and not books:
        raise CoverforgeError("--covers needs the books' titles: use --catalogue, or --title/--author with --prompt")
    checks.seed("--seed", args.seed, len(prompts) * args.candidates)
    request = GenerationRequest(prompts=prompts, sample=sample, books=books, seed=args.seed, aspect=args.aspect,
                                batch_size=args.batch_size, covers=args.covers, cover_size=args.cover_size, candidates=args.candidates,
                                lettering=args.lettering)
    written = run_generation(request, Path(args.out), run=args.run, model=args.model, lora=args.lora,
                             fuse=args.fuse_lora, config_folder=args.config_folder, compare_base=args.compare_base)
    print(f"wrote {len(written)} images to {args.out}")
    return 0


def _sample_settings(args: argparse.Namespace):
    """The run's own [sample] settings (defaults without --run), then sample.* overrides, then flags."""
    from dataclasses import replace

    from coverforge.config import load_config, sample_settings
    from coverforge.run_folder import RunFolder

    config = RunFolder(args.run).config if args.run else None
    base = load_config(config).sample if config is not None and config.is_file() else None
    sample = sample_settings(base, args.overrides)
    flags = {"negative_prompt": args.negative, "sampler": args.sampler, "steps": args.steps, "guidance_scale": args.guidance,
             "width": args.width, "height": args.height, "lora_scale": args.lora_scale}
    return replace(sample, **{k: v for k, v in flags.items() if v is not None})


def _lora_dataset(lora: str | None) -> str:
    """The dataset a coverforge LoRA was trained on, from the training config in its metadata."""
    from coverforge.sampling.from_run import lora_training_config

    if not lora or not Path(lora).exists():
        return ""
    trained = lora_training_config(lora)
    return trained.data.dataset if trained is not None else ""


def _run_dataset(run: str | None) -> str:
    """The dataset a run was trained on, as its config names it ("" without a readable run config)."""
    from coverforge.config import load_config
    from coverforge.run_folder import RunFolder

    config = RunFolder(run).config if run else None
    return load_config(config).data.dataset if config and config.is_file() else ""


def _check_aspect(aspect: str) -> None:
    """W:H with two finite positive numbers (2:3, 1:1.6)."""
    import math

    from coverforge.errors import CoverforgeError

    try:
        w, h = (float(x) for x in aspect.split(":"))
    except ValueError:
        raise CoverforgeError(f"--aspect {aspect!r} must look like W:H, e.g. 2:3") from None
    if not all(math.isfinite(v) and v > 0 for v in (w, h)):
        raise CoverforgeError(f"--aspect {aspect!r}: width and height must be finite numbers > 0, e.g. 2:3")
