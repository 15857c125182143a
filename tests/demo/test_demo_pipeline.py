"""`coverforge demo --quick`: the whole pipeline offline, end to end, through the real commands."""

import json

import pytest

from coverforge.cli.main import main


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_quick_demo_writes_every_stage(quick_demo):
    out, metrics = quick_demo
    overall = metrics["overall"]
    assert overall["genre_alignment"]["n"] >= 20
    assert overall["genre_alignment_real_covers"]["value"] >= 0.9  # the judge itself is trustworthy
    assert overall["grayscale_rate"]["value"] <= 0.2
    for path in ("catalogue/catalogue.csv", "dataset/train/metadata.jsonl", "dataset/report.md", "run/config.toml",
                 "run/final/model/unet/diffusion_pytorch_model.safetensors", "run/logs/loss.png", "report.html"):
        assert (out / path).exists(), path
    assert len(list((out / "covers").glob("*.png"))) >= 6
    assert len(list((out / "run" / "generated").glob("*.png"))) == overall["genre_alignment"]["n"]


@pytest.mark.slow
def test_quick_demo_beats_chance_clearly(quick_demo):
    """Measured at 600 steps: 59% at seed 0 (this test), 44% at seed 1, 48% at seed 2; chance 17%."""
    _, metrics = quick_demo
    assert metrics["overall"]["genre_alignment"]["value"] >= 2 * metrics["demo"]["chance"]
