"""VAE slicing and tiling: time and peak memory of encoding large covers, as the latent cache does.

    .venv/bin/python benchmarks/bench_vae_memory.py [--quick] [--threads 1] [--work DIR]

The small SDXL's VAE (small_models.py) encodes one batch of random 1024x1536 covers (4 per batch;
384x576, 2 per batch with --quick) with each of slicing and tiling off and on. Each encode runs in
its own process (vae_encode.py), so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from measured_process import PYTHON, child_env, machine_line, run_child
from small_models import write_small_sdxl
from tables import table

WORKER = Path(__file__).resolve().parent / "vae_encode.py"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="384x576 covers, 2 per batch")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads of the encoding process")
    ap.add_argument("--work", help="folder for the model and logs (default: a temporary folder, removed)")
    args = ap.parse_args()
    (w, h), batch = ((384, 576), 2) if args.quick else ((1024, 1536), 4)
    print(f"machine: {machine_line()}")
    with tempfile.TemporaryDirectory(prefix="bench-vae-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        model = write_small_sdxl(work / "small-sdxl")
        rows = []
        for slicing, tiling in ((False, False), (True, False), (False, True), (True, True)):
            log = work / f"vae-{int(slicing)}{int(tiling)}.log"
            cmd = [PYTHON, str(WORKER), str(model), "--size", f"{w}x{h}", "--batch", str(batch)]
            cmd += ["--slicing"] * slicing + ["--tiling"] * tiling
            rc, peak, _, _ = run_child(cmd, child_env(args.threads), log)
            if rc:
                raise RuntimeError(f"vae_encode.py exited {rc}; see {log}:\n{log.read_text()[-2000:]}")
            encode_s = float(re.search(r"encode_s=([\d.]+)", log.read_text()).group(1))
            rows.append(["on" if slicing else "off", "on" if tiling else "off", f"{encode_s:.1f}", f"{peak:.0f}"])
    base = float(rows[0][3])
    for row in rows:
        row.append(f"{float(row[3]) / base:.2f}x")
    print(f"\n### VAE encoding for the latent cache: small SDXL VAE, {batch} covers of {w}x{h} px per batch\n")
    print(table(["slicing", "tiling", "encode s", "peak RSS MB", "vs off/off"], rows))


if __name__ == "__main__":
    main()
