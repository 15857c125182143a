"""benchmarks/device_checks.py (the prepared GPU checks of #19 / #18) on the tiny models on the CPU:
every row trains and lands in the JSON with its settings; the budget stops rows, never crashes."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _main():
    spec = importlib.util.spec_from_file_location("device_checks", ROOT / "benchmarks" / "device_checks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # ten short training runs of the tiny models (about a minute on two busy cores)
def test_every_row_trains_on_the_tiny_models_and_is_written_with_its_settings(tmp_path):
    checks = _main()
    out = tmp_path / "device_checks.json"
    assert checks.main(["--device", "cpu", "--tiny", "--steps", "3", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert [r["row"] for r in rows] == [r.label for r in checks.ROWS]
    assert rows[0]["row"] == "qwen-image bf16 + ckpt" and rows[-1]["row"] == "sdxl bf16 + ckpt"
    for r in rows:
        assert r["status"] == "ok" and r["phase"] == "done", r
        assert r["steps_done"] == 3 and r["images_per_s"] > 0 and math.isfinite(r["final_loss"])
        assert r["side_px"] == 64 and r["trained_params_m"] > 0
    by = {r["row"]: r for r in rows}
    assert by["qwen-image int8 + ckpt"]["quantize_denoiser"] == "int8" and by["z-image bf16"]["gradient_checkpointing"] is False
    assert by["sdxl fp16 + ckpt"]["precision"] == "fp16"
    # The stand-in text caches: 512 prompt tokens for the flow models, SDXL's 7 CLIP windows of 77.
    assert by["z-image bf16 + ckpt"]["text_tokens"] == 512 and by["sdxl bf16 + ckpt"]["text_tokens"] == 7 * 77
    assert report["environment"]["device"] and report["settings"]["tiny"] is True


def test_the_budget_cuts_the_running_row_short_and_skips_the_rest(tmp_path):
    checks = _main()
    out = tmp_path / "checks.json"
    argv = ["--device", "cpu", "--tiny", "--steps", "500", "--warmup", "1", "--text-tokens", "16", "--budget-s", "2",
            "--only", "z-image nf4 + ckpt,sdxl fp16 + ckpt", "--out", str(out)]
    assert checks.main(argv) == 0
    first, second = json.loads(out.read_text())["rows"]
    assert first["status"] == "ok" and first["quantize_denoiser"] == "nf4"
    assert 1 < first["steps_done"] < 500 and "budget" in first["note"] and first["images_per_s"] > 0
    assert second["status"] == "skipped" and second["row"] == "sdxl fp16 + ckpt" and "budget" in second["note"]


def test_an_out_of_memory_row_is_recorded_and_the_next_row_runs(tmp_path, monkeypatch):
    import torch

    checks = _main()
    real = checks.build_denoiser

    def build(family, *args):
        if family == "qwen-image":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 76.00 GiB")
        return real(family, *args)

    monkeypatch.setattr(checks, "build_denoiser", build)
    out = tmp_path / "checks.json"
    argv = ["--device", "cpu", "--tiny", "--steps", "2", "--text-tokens", "16", "--only", "qwen-image bf16 + ckpt,z-image bf16 + ckpt",
            "--out", str(out)]
    assert checks.main(argv) == 0
    oom, ok = json.loads(out.read_text())["rows"]
    assert oom["status"] == "oom" and oom["phase"] == "setup" and "76.00 GiB" in oom["error"] and "images_per_s" not in oom
    assert ok["status"] == "ok" and ok["steps_done"] == 2
