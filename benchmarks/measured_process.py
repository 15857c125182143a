"""A command in its own process, measured: wall time, its own peak RSS, and per-process VmHWM when
it launches workers; plus the machine line the benchmarks print above their tables."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

PYTHON = sys.executable

# Fork + exec from a small process: Linux carries a process's peak RSS across exec, so a run
# started straight from a (torch-loaded) benchmark would report at least the benchmark's size.
MAXRSS_WRAPPER = ("import os, sys\npid = os.fork()\nif pid == 0:\n    os.execvp(sys.argv[2], sys.argv[2:])\n"
                  "_, status, usage = os.wait4(pid, 0)\nopen(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
                  "sys.exit(os.waitstatus_to_exitcode(status))")


def _hwm_mb(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else 0.0


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def run_child(cmd: list[str], env: dict, log: Path, track_children: bool = False) -> tuple[int, float, dict[int, float], float]:
    """Run `cmd`; return (exit code, peak RSS MB over its tree, VmHWM MB per process, seconds).

    The wrapper's wait4 gives the run's own peak (the largest process of its tree, as
    RUSAGE_CHILDREN would); VmHWM polling splits it per process when the run is a launcher.
    """
    started = time.perf_counter()
    maxrss_file = log.with_suffix(".maxrss")
    with open(log, "w") as out:
        proc = subprocess.Popen([PYTHON, "-S", "-c", MAXRSS_WRAPPER, str(maxrss_file), *cmd], env=env, stdout=out, stderr=subprocess.STDOUT)
        per_pid: dict[int, float] = {}
        while proc.poll() is None:
            if track_children:
                for child in _descendants(proc.pid):
                    per_pid[child] = max(per_pid.get(child, 0.0), _hwm_mb(child))
            time.sleep(0.1)
    peak = int(maxrss_file.read_text()) / 1024 if maxrss_file.exists() else float("nan")
    return proc.returncode, peak, per_pid, time.perf_counter() - started


def child_env(threads: int, processes: int = 1) -> dict:
    """`threads` per process. One is the default: on a shared 2-core machine, OpenMP threads that
    wait at barriers for a descheduled sibling made step times jump 10x between steps."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": str(threads)}
    if processes > 1:
        env["ACCELERATE_USE_CPU"] = "true"
    return env


def machine_line() -> str:
    load = os.getloadavg()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} CPU cores ({platform.machine()}), {mem:.0f} GiB, torch {torch.__version__}; "
            f"load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
