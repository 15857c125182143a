"""`coverforge export RUN --format kohya|diffusers --out FILE`: a run's LoRA for other tools."""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder (or a pytorch_lora_weights.safetensors file)")
    p.add_argument("--format", choices=["kohya", "diffusers"], default="kohya")
    p.add_argument("--out", required=True, help="output .safetensors file")


def run(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from coverforge.cli.checks import output_file
    from coverforge.errors import CoverforgeError
    from coverforge.models.kohya import export_kohya
    from coverforge.models.lora import LORA_WEIGHTS
    from coverforge.run_folder import RunFolder

    output_file(args.out, "--out", (".safetensors",))
    src = Path(args.run)
    if src.is_dir():
        src = RunFolder(src).final_lora / LORA_WEIGHTS
    if not src.is_file():
        raise CoverforgeError(f"{src} not found: export needs a finished LoRA run")
    if args.format == "diffusers":
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, args.out)
    else:
        export_kohya(src, args.out)
    print(f"wrote {args.format} LoRA to {args.out}")
    return 0
