"""`coverforge evaluate RUN`: final, every checkpoint and the base, with the same books and seeds."""

import json

from coverforge.cli.main import main
from coverforge.config import config_from_dict
from coverforge.evaluation.runs import parse_seeds
from coverforge.training.loop import train


def test_parse_seeds():
    assert parse_seeds("0..3") == [0, 1, 2, 3]
    assert parse_seeds("4,7") == [4, 7]


def test_evaluate_run_folder_with_checkpoints_and_base(tmp_path, tiny_models, colour_dataset):
    cfg = config_from_dict({
        "model": {"path": str(tiny_models["sd15"])}, "data": {"dataset": str(colour_dataset), "resolution": 64},
        "train": {"recipe": "lora", "max_steps": 4, "batch_size": 2, "checkpoint_every": 2},
        "lora": {"rank": 4, "alpha": 4}, "sample": {"steps": 2, "width": 64, "height": 64},
    })
    run = tmp_path / "run"
    train(cfg, run, progress=False)
    out = tmp_path / "report"
    args = ["evaluate", str(run), "--dataset", str(colour_dataset / "validation"), "--extractor", "none",
            "--checkpoints", "all", "--compare-base", "--seeds", "0..1", "--out", str(out)]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["runs"]) == ["base", "step 2", "step 4", "final"]
    n_books = len((colour_dataset / "validation" / "metadata.jsonl").read_text().splitlines())
    for result in metrics["runs"].values():
        assert result["overall"]["grayscale_rate"]["n"] == 2 * n_books
    # The last checkpoint and the final weights are the same model: same seeds, same figures.
    assert metrics["runs"]["step 4"]["overall"] == metrics["runs"]["final"]["overall"]
    assert "comparison" in metrics and (out / "report.html").exists()
    # Same command twice, same numbers.
    assert main(args[:-1] + [str(tmp_path / "again")]) == 0
    assert json.loads((tmp_path / "again" / "metrics.json").read_text())["runs"] == metrics["runs"]
