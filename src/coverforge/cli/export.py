"""`coverforge export RUN --format kohya|comfyui|diffusers --out FILE`: a run's LoRA for other tools."""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder (or a pytorch_lora_weights.safetensors file)")
    p.add_argument("--format", choices=["kohya", "comfyui", "diffusers"], default=None,
                   help="kohya (SD 1.x/2.x, SDXL), comfyui (Qwen-Image, Z-Image) or diffusers; default: the family's")
    p.add_argument("--out", required=True, help="output .safetensors file")


def run(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from safetensors import safe_open

    from coverforge.cli.checks import output_file
    from coverforge.errors import CoverforgeError
    from coverforge.models.comfyui import export_comfyui
    from coverforge.models.families import family_of
    from coverforge.models.kohya import export_kohya
    from coverforge.models.lora import LORA_WEIGHTS, TEXT_ADAPTER
    from coverforge.run_folder import RunFolder

    output_file(args.out, "--out", (".safetensors",))
    src = Path(args.run)
    if src.is_dir():
        src = RunFolder(src).final_lora / LORA_WEIGHTS
    if not src.is_file():
        raise CoverforgeError(f"{src} not found: export needs a finished LoRA run")
    with safe_open(str(src), "pt") as f:
        family = (f.metadata() or {}).get("family", "")
    flow = bool(family) and family_of(family).has_flow
    fmt = args.format or ("comfyui" if flow else "kohya")
    if fmt == "kohya" and flow:
        raise CoverforgeError(f"--format kohya writes SD/SDXL UNet names; this is a {family} LoRA: use --format comfyui "
                              "(ComfyUI and diffusers read it) or --format diffusers")
    if fmt == "diffusers":
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, args.out)
    elif fmt == "comfyui":
        export_comfyui(src, args.out)
    else:
        export_kohya(src, args.out)
    print(f"wrote {fmt} LoRA to {args.out}")
    if flow and (src.parent / TEXT_ADAPTER / "adapter_config.json").is_file():
        # The stock flow pipelines load the transformer's LoRA only; the text encoder's stays a PEFT folder.
        print(f"note: the text encoder's adapter is not in {args.out}: it stays in {src.parent / TEXT_ADAPTER} "
              "(a PEFT adapter folder; `coverforge generate --lora` loads it with the weights)")
    return 0
