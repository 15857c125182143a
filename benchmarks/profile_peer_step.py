"""Where a step's time goes, coverforge against the diffusers example, on a bench_peer.py row.

    .venv/bin/python benchmarks/profile_peer_step.py --rows sd15,small-frozen [--repeats 2] [--work DIR]

Runs both trainers with bench_peer.py's settings (peer_runs.py: same model, data, batch, LoRA,
optimizer) under profile_phases.py, one thread each, sides alternating, and prints each side's
per-phase milliseconds per step (mean over --steps steady steps after --skip warm-up steps) and
their share of its step. The machine may be busy: read the shares and the ratios within one
profile, not absolute times across runs. Also prints what each side calls the UNet (or transformer) with (shapes,
dtypes, layout, attention processors) and its optimizer, which is where two trainers doing the
same maths can still differ.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tomli_w

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_peer import COVERS, ROWS  # noqa: E402
from peer_data import build_dataset, build_model, tokenizers_of  # noqa: E402
from peer_runs import PYTHON, child_env, coverforge_config, peer_command, run_profiled  # noqa: E402
from tables import table  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PROFILER = HERE / "profile_phases.py"


def run_side(side: str, key: str, folder: Path, model: Path, dataset: Path, args, out: Path) -> dict:
    row = ROWS[key]
    steps = args.skip + args.steps + 2  # the profiler ends the process once its window is recorded
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    profile = [f"--out={out}", f"--skip={args.skip}", f"--steps={args.steps}", "--"]
    env = child_env(args.threads)
    if side == "coverforge":
        config = folder / "config.toml"
        config.write_text(tomli_w.dumps(coverforge_config(model, row.family, dataset, row.resolution, steps, row.text_lora, folder / "cache")))
        cmd = [PYTHON, str(PROFILER), *profile, "-m", "coverforge", "train", str(config), "--out", str(folder / "run")]
    else:
        peer_cmd = peer_command(args.peer_python, args.peers / row.script, model, dataset, row.resolution, steps, row.text_lora, folder)
        cmd = [peer_cmd[0], str(PROFILER), *profile, *peer_cmd[1:]]
        env["PYTHONPATH"] = str(args.peers / "tvshim")
    return run_profiled(side, cmd, env, folder / "train.log", out)


def phase_table(profiles: dict[str, list[dict]]) -> str:
    """Per phase: ms/step (mean over repeats) and share of the step, both sides."""
    sides = list(profiles)
    mean = {s: {} for s in sides}
    for s in sides:
        for p in profiles[s]:
            for name, v in p["phases_s"].items():
                mean[s][name] = mean[s].get(name, 0.0) + v / len(profiles[s])
    step = {s: sum(p["step_s_mean"] for p in profiles[s]) / len(profiles[s]) for s in sides}
    names = sorted({n for s in sides for n in mean[s]}, key=lambda n: -max(mean[s].get(n, 0.0) for s in sides))
    rows = []
    for n in names:
        line = [n]
        for s in sides:
            v = mean[s].get(n, 0.0)
            line += [f"{1000 * v:.2f}", f"{100 * v / step[s]:.1f}%"]
        rows.append(line)
    rows.append(["**step**", *[c for s in sides for c in (f"{1000 * step[s]:.2f}", "100%")]])
    header = ["phase", *[c for s in sides for c in (f"{s} ms/step", "share")]]
    return table(header, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="sd15,small-frozen", help=f"comma-separated: {', '.join(ROWS)}")
    ap.add_argument("--repeats", type=int, default=1, help="alternating runs per side")
    ap.add_argument("--skip", type=int, default=10, help="warm-up steps left out of each profile")
    ap.add_argument("--steps", type=int, default=30, help="steady steps profiled")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for both sides")
    ap.add_argument("--sides", default="coverforge,peer", help="coverforge, peer or both")
    ap.add_argument("--work", help="folder for models, datasets and runs, reused when given")
    ap.add_argument("--peers", type=Path, default=REPO.parent / "shared" / "peers")
    ap.add_argument("--peer-python", type=Path, default=REPO.parent / "peer-venv" / "bin" / "python")
    args = ap.parse_args()
    sides = [s for s in args.sides.split(",") if s]
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    print(f"commit {commit}; {args.threads} thread(s); {args.skip} warm-up + {args.steps} profiled steps; {args.repeats} repeat(s)")
    with tempfile.TemporaryDirectory(prefix="profile-peer-") as tmp:
        work = Path(args.work or tmp)
        for key in [k for k in args.rows.split(",") if k]:
            row = ROWS[key]
            model = build_model(row.model, work / row.model)
            dataset, _ = build_dataset(work / f"dataset-{row.resolution}", row.resolution, COVERS, tokenizers_of(model))
            profiles: dict[str, list[dict]] = {s: [] for s in sides}
            for i in range(args.repeats):
                for side in sides[:: 1 if i % 2 == 0 else -1]:
                    out = work / "profiles" / f"{key}-{side}-{i}.json"
                    out.parent.mkdir(parents=True, exist_ok=True)
                    p = run_side(side, key, work / "runs" / f"profile-{key}-{side}", model, dataset, args, out)
                    profiles[side].append(p)
                    print(f"  {key} {side} #{i + 1}: {1000 * p['step_s_mean']:.1f} ms/step (median {1000 * p['step_s_median']:.1f})", flush=True)
            print(f"\n### {row.title}\n\n{phase_table(profiles)}\n")
            for side in sides:
                p = profiles[side][0]
                print(f"{side} denoiser call: {json.dumps(p['unet_call'])}\n{side} optimizer: {json.dumps(p['optimizer'])}; threads {p['threads']}\n")


if __name__ == "__main__":
    main()
