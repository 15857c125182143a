"""benchmarks/profile_memory.py on a fake trainer: it stops the process just before the asked-for
backward and sorts what the step holds: parameters by dtype, trained or frozen, other tensors, and
what autograd saved (a parameter saved for the backward counts as a parameter, once)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE_TRAINER = r"""
import torch
frozen = torch.nn.Linear(1024, 1024).requires_grad_(False)     # 4 MiB of weight
trained, head = torch.nn.Linear(1024, 512), torch.nn.Linear(512, 512)  # 2 + 1 MiB
batch = torch.randn(256, 1024)
for step in range(5):
    hidden = frozen(batch).relu()           # nothing needs a gradient yet: nothing saved
    out = head(trained(hidden))             # saved: hidden (1 MiB), trained's output (0.5 MiB), head's weight
    out.square().mean().backward()          # saved: head's output (0.5 MiB)
print("finished", flush=True)
"""


def test_the_step_is_sorted_and_the_process_stops_before_the_asked_backward(tmp_path):
    script, out = tmp_path / "fake_trainer.py", tmp_path / "memory.json"
    script.write_text(FAKE_TRAINER)
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "profile_memory.py"), f"--out={out}", "--step=3", "--", str(script)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "finished" not in done.stdout, done.stderr
    report = json.loads(out.read_text())
    held = report["reachable_mib"]["cpu"]
    assert held["parameters frozen float32"] == 4.0 and held["parameters trained float32"] == 3.0  # MiB, to 0.1
    saved = report["saved_for_backward_mib"]["cpu"]
    assert saved["activations and weight copies float32"] == 2.0
    assert saved["parameters float32"] == 1.0  # head's weight, for the gradient of its input
    assert report["step"] == 3 and report["saved_by_shape"]["float32 [256, 1024]"] == [1, 1.0]
