import json
import shutil

from coverforge.cli.main import main


def test_reference_then_evaluate_end_to_end(tmp_path, split_factory, tiny_clip_dir, capsys):
    dataset = split_factory(tmp_path / "ds" / "validation", 18, seed=0)
    generated = split_factory(tmp_path / "generated", 12, seed=1, gray_every=3)
    clip = ["--extractor", "clip", "--clip-model", str(tiny_clip_dir), "--batch-size", "5"]
    assert main(["evaluate", "reference", str(dataset), "--out", str(tmp_path / "ref"), *clip]) == 0
    meta = json.loads((tmp_path / "ref" / "reference.json").read_text())
    assert meta["n"] == 18 and meta["extractor"].startswith("clip:")

    args = ["evaluate", str(generated), "--reference", str(tmp_path / "ref"), "--out", str(tmp_path / "report"), "--kid-subsets", "5", *clip]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["n"] == 12 and metrics["overall"]["fid"]["n_reference"] == 18
    assert metrics["overall"]["grayscale_rate"]["value"] == 4 / 12
    assert {"clip_score", "clip_score_chunked", "kid"} <= set(metrics["overall"])
    assert (tmp_path / "report" / "report.html").stat().st_size > 1000
    first = (tmp_path / "report" / "metrics.json").read_text()
    shutil.rmtree(tmp_path / "report")
    assert main(args) == 0
    assert (tmp_path / "report" / "metrics.json").read_text() == first  # same command, same numbers


def test_user_mistakes_exit_2_with_one_line(tmp_path, split_factory, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("COVERFORGE_INCEPTION_WEIGHTS", raising=False)
    dataset = split_factory(tmp_path / "validation", 3)
    assert main(["evaluate", "reference", str(dataset), "--out", str(tmp_path / "ref")]) == 2
    err = capsys.readouterr().err
    assert "weights-inception-2015-12-05-6726825d.pth" in err and err.count("\n") == 1
    assert main(["evaluate", str(tmp_path / "nowhere"), "--extractor", "none", "--out", str(tmp_path / "r")]) == 2
    assert "metadata.jsonl" in capsys.readouterr().err
