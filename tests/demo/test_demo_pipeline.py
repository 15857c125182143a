"""`coverforge demo --quick`: the whole pipeline offline, beating chance clearly (>= 2x)."""

import json

import pytest

from coverforge.cli.main import main


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    overall = metrics["overall"]
    chance = metrics["demo"]["chance"]
    assert overall["genre_alignment"]["n"] >= 20
    assert overall["genre_alignment"]["value"] >= 2 * chance, overall["genre_alignment"]
    assert overall["genre_alignment_real_covers"]["value"] >= 0.9  # the judge itself is trustworthy
    assert overall["grayscale_rate"]["value"] <= 0.2
    # Every stage left its output in the one run folder.
    for path in ("catalogue/catalogue.csv", "dataset/train/metadata.jsonl", "dataset/report.md", "run/config.toml",
                 "run/final/model/unet/diffusion_pytorch_model.safetensors", "run/logs/loss.png", "report.html"):
        assert (out / path).exists(), path
    assert len(list((out / "covers").glob("*.png"))) >= 6
    assert len(list((out / "run" / "generated").glob("*.png"))) == overall["genre_alignment"]["n"]
