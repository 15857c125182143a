"""The demo stopped during training stops too, and says how to continue."""

from __future__ import annotations

from coverforge.training.loop import TrainResult
from bad_input_kit import cli, one_torch_thread, tiny_clip_dir  # noqa: F401 - fixtures


def test_demo_stopped_by_sigterm_during_training_stops_and_says_how_to_continue(tmp_path, cli, monkeypatch):
    calls = []

    def stopped_train(cfg, run_dir, resume=None, progress=True):
        calls.append(resume)
        return TrainResult(run_dir=run_dir, step=3, losses=[0.5], stopped_early="SIGTERM")

    monkeypatch.setattr("coverforge.training.loop.train", stopped_train)
    line = cli.fails("demo", "--out", tmp_path / "demo", "--books", "12", "--steps", "10", mentions=("SIGTERM", "--resume"))
    assert "step 3" in line
    assert not (tmp_path / "demo" / "run" / "generated").exists() and not (tmp_path / "demo" / "report.html").exists()
    cli("demo", "--out", tmp_path / "demo", "--books", "12", "--steps", "10", "--resume")
    assert calls == [None, "latest"]
