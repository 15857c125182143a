"""The training progress bar: drawn at tqdm's pace, not once a step, and it ends on the last loss."""

from __future__ import annotations

import re

from coverforge.config import config_from_dict
from coverforge.training import loop


def test_the_bar_ends_on_the_last_step_and_its_loss(tiny_models, colour_dataset, tmp_path, capsys):
    cfg = config_from_dict({
        "model": {"path": str(tiny_models["sd15"])},
        "data": {"dataset": str(colour_dataset), "resolution": 32, "buckets": False},
        "train": {"recipe": "lora", "max_steps": 3, "batch_size": 2},
        "run": {"checkpoint_every": 100, "log_with": "none"},
        "lora": {"rank": 4, "alpha": 4},
    })
    result = loop.train(cfg, tmp_path / "run", progress=True)
    draws = [m.groups() for m in re.finditer(r"training:[^\r\n]*?(\d+)/3 \[[^\]]*?(?:loss=([\d.]+))?\]", capsys.readouterr().err)]
    assert draws and draws[-1] == ("3", f"{result.losses[-1]:.4f}")
    # Every draw that shows a loss shows the loss of the step it counts (set before the bar moves).
    assert all(loss == f"{result.losses[int(n) - 1]:.4f}" for n, loss in draws if loss)
