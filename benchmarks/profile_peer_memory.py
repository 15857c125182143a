"""Where the bytes of one step go, coverforge against the diffusers SDXL example, on one bench_peer_gpu.py row.

    python3 benchmarks/profile_peer_memory.py --work /tmp/pg --peers .peers --precision bf16 --text-lora   # on a GPU
    .venv/bin/python benchmarks/profile_peer_memory.py --work /tmp/pm --model small-sdxl --resolution 128 --precision no \\
        --text-lora --peer-python ../peer-venv/bin/python --tvshim ../shared/peers/tvshim                 # CPU rehearsal

Both trainers run with bench_peer_gpu.py's settings (peer_runs.py) under profile_memory.py, which
stops each one just before its --step-th backward and lists what it holds: parameters by dtype,
trained or frozen, other reachable tensors, the tensors autograd saved for that backward, and the
CUDA allocator's figures. The table puts the two sides' categories next to each other.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import tomli_w

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_data import build_dataset, build_model, tokenizers_of  # noqa: E402
from peer_runs import PYTHON, child_env, coverforge_config, peer_command, run_profiled  # noqa: E402
from tables import table  # noqa: E402

HERE = Path(__file__).resolve().parent
COVERS = 64
SCRIPT = "train_text_to_image_lora_sdxl.py"


def profile(side: str, folder: Path, args, model: Path, dataset: Path) -> dict:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    out, steps = folder / "memory.json", args.step + 5
    wrapper = [str(HERE / "profile_memory.py"), f"--out={out}", f"--step={args.step}", "--"]
    env = child_env(0)
    if side == "coverforge":
        config = folder / "config.toml"
        config.write_text(tomli_w.dumps(coverforge_config(model, "sdxl", dataset, args.resolution, steps, args.text_lora,
                                                          folder / "cache", args.precision)))
        cmd = [PYTHON, *wrapper, "-m", "coverforge", "train", str(config), "--out", str(folder / "run")]
    else:
        peer = peer_command(args.peer_python, args.peers / SCRIPT, model, dataset, args.resolution, steps, args.text_lora, folder,
                            args.precision)
        cmd = [peer[0], *wrapper, *peer[1:]]
        if args.tvshim is not None:
            env["PYTHONPATH"] = str(args.tvshim)
    return run_profiled(side, cmd, env, folder / "train.log", out)


def rows(reports: dict[str, dict]) -> list[list[str]]:
    lines = []
    for section in ("reachable_mib", "saved_for_backward_mib"):
        keys = sorted({(d, c) for r in reports.values() for d, cats in r[section].items() for c in cats})
        for device, category in keys:
            values = [reports[s][section].get(device, {}).get(category, 0.0) for s in reports]
            lines.append([section.removesuffix("_mib").replace("_", " "), device, category, *[f"{v:.1f}" for v in values]])
    for key in ("allocated", "max_allocated", "reserved", "max_reserved"):
        if all("cuda_mib" in r for r in reports.values()):
            lines.append(["CUDA allocator", "cuda", key, *[f"{r['cuda_mib'][key]:.1f}" for r in reports.values()]])
    return lines


def shape_differences(reports: dict[str, dict], top: int = 25) -> list[list[str]]:
    cf, peer = reports["coverforge"]["saved_by_shape"], reports["peer"]["saved_by_shape"]
    diff = []
    for key in set(cf) | set(peer):
        a, b = cf.get(key, [0, 0.0]), peer.get(key, [0, 0.0])
        if a[0] != b[0]:
            diff.append((a[1] - b[1], key, a, b))
    diff.sort(key=lambda d: -abs(d[0]))
    return [[key, f"{a[0]} ({a[1]:.1f})", f"{b[0]} ({b[1]:.1f})", f"{d:+.1f}"] for d, key, a, b in diff[:top]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="real-sdxl", help="real-sdxl (on a GPU) or small-sdxl (CPU rehearsal)")
    ap.add_argument("--resolution", type=int, default=1024)
    ap.add_argument("--precision", default="bf16", help="bf16, fp16 or no, on both sides")
    ap.add_argument("--text-lora", action="store_true", help="LoRA on both text encoders (else frozen)")
    ap.add_argument("--step", type=int, default=3, help="stop before this backward")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=None, help="JSON of both reports")
    ap.add_argument("--peers", type=Path, default=HERE.parents[1] / "shared" / "peers")
    ap.add_argument("--peer-python", type=Path, default=Path(sys.executable))
    ap.add_argument("--tvshim", type=Path, default=None)
    args = ap.parse_args()
    if not (args.peers / SCRIPT).is_file():
        print(f"peer script missing: {args.peers / SCRIPT} (diffusers' example; see ../shared/peers/README.md)")
        return 2
    model = build_model(args.model, args.work / args.model)
    dataset, _ = build_dataset(args.work / f"dataset-{args.resolution}", args.resolution, COVERS, tokenizers_of(model))
    reports = {side: profile(side, args.work / "memory" / side, args, model, dataset) for side in ("coverforge", "peer")}
    if args.out:
        args.out.write_text(json.dumps(reports, indent=1))
    title = f"{args.model} {args.resolution} px, {'LoRA on both text encoders' if args.text_lora else 'frozen text encoders'}, {args.precision}"
    print(f"\n### What one step holds before backward {args.step} (MiB): {title}\n")
    print(table(["what", "device", "category", "coverforge", "peer"], rows(reports)))
    print(f"\nSaved activations whose count differs between the sides, by dtype and shape (count, MiB), largest difference first:\n")
    print(table(["dtype, shape", "coverforge", "peer", "coverforge - peer, MiB"], shape_differences(reports)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
