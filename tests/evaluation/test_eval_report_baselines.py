"""Figures that carry their baselines show them in report.md and report.html, and a run's own
per-genre figures (not in evaluate.METRICS) get their own columns."""

import json

from coverforge.evaluation.report import write_report


def test_baselines_and_own_per_genre_figures_are_reported(tmp_path):
    align = {"value": 0.5, "n": 12, "extractor": "judge", "baseline": {"chance": 1 / 6, "flat_cover": 0.25}}
    hf = {"value": 1.8, "n": 12, "extractor": "mean |laplacian|"}
    metrics = {"n": 12, "seed": 0, "overall": {"genre_alignment": align, "high_frequency_ratio": hf},
               "per_genre": {"Fantasy": {"genre_alignment": align, "motif_present": {"value": 0.75, "n": 4, "extractor": "moon"}}}}
    write_report(metrics, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "| baseline |" in md
    assert "chance 0.167; flat_cover 0.250" in md
    assert "| genre | n | genre_alignment | motif_present |" in md
    assert "chance 0.167; flat_cover 0.250" in (tmp_path / "report.html").read_text()
    assert json.loads((tmp_path / "metrics.json").read_text())["overall"]["genre_alignment"]["baseline"]["flat_cover"] == 0.25


def test_no_baseline_column_without_baselines(tmp_path):
    write_report({"n": 1, "seed": 0, "overall": {"fid": {"value": 1.0, "n": 1, "extractor": "x"}}, "per_genre": {}}, tmp_path)
    assert "baseline" not in (tmp_path / "report.md").read_text()
