import json
import weakref

import numpy as np
import pytest
import torch
from PIL import Image

from coverforge.errors import CoverforgeError
from coverforge.evaluation.clip_score import load_clip
from coverforge.evaluation.evaluate import compare_runs, evaluate_images, evaluate_run, history_from_runs
from coverforge.evaluation.features import extract_features, module_extractor
from coverforge.evaluation.frechet import StreamingStats, stats_from_features
from coverforge.evaluation.image_folder import iter_images, read_metadata
from coverforge.evaluation.reference import compute_reference, load_reference


class AliveCounter:
    """Counts images created and not yet freed, and the peak of that count."""

    def __init__(self):
        self.alive = self.peak = 0

    def track(self, image):
        self.alive += 1
        self.peak = max(self.peak, self.alive)
        weakref.finalize(image, self._freed)
        return image

    def _freed(self):
        self.alive -= 1


@pytest.fixture(scope="module")
def split(tmp_path_factory, split_factory):
    return split_factory(tmp_path_factory.mktemp("ds") / "validation", 30, seed=0, gray_every=5)


@pytest.fixture(scope="module")
def extractor(cnn_factory):
    return module_extractor(cnn_factory(0), name="tinycnn", image_size=32)


@pytest.fixture(scope="module")
def reference(split, extractor, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    compute_reference(split, extractor, out, batch_size=8)
    return load_reference(out, extractor)


def test_reference_round_trip_and_mismatch(split, extractor, reference, cnn_factory, tmp_path):
    assert reference.stats.n == 30 and reference.features.shape == (30, 8)
    assert reference.stats.mu.dtype == np.float64 and reference.meta["extractor"] == extractor.identity
    assert reference.primary_genres[:3] == ["fantasy", "romance", "thriller"]
    other = module_extractor(cnn_factory(1), name="tinycnn", image_size=32)
    assert other.identity != extractor.identity  # weights hash differs
    folder = tmp_path / "r"
    compute_reference(split, extractor, folder, batch_size=8)
    with pytest.raises(CoverforgeError, match="recompute the reference"):
        load_reference(folder, other)
    with pytest.raises(CoverforgeError, match="evaluate reference"):
        load_reference(tmp_path / "missing")


def test_evaluating_the_reference_images_gives_zero_fid_and_full_breakdown(split, extractor, reference):
    rows = read_metadata(split)
    result = evaluate_images(iter_images(split, rows), reference=reference, extractor=extractor, seed=0, batch_size=7, kid_subsets=10)
    overall = result["overall"]
    assert abs(overall["fid"]["value"]) < 1e-6
    assert abs(overall["kid"]["value"]) < 0.05 * max(1e-9, overall["kid"]["std"]) + 1e-3
    assert overall["grayscale_rate"]["value"] == pytest.approx(6 / 30)
    assert set(result["per_genre"]) == {"fantasy", "romance", "thriller"}
    for figs in [overall, *result["per_genre"].values()]:
        for fig in figs.values():
            assert {"value", "n", "extractor"} <= set(fig)
    assert result["per_genre"]["fantasy"]["fid"]["n"] == 10 and result["per_genre"]["fantasy"]["fid"]["n_reference"] == 10
    assert abs(result["per_genre"]["fantasy"]["fid"]["value"]) < 1e-6
    json.dumps(result)  # JSON-ready


def test_same_call_twice_gives_identical_numbers(split, extractor, reference, tiny_clip_dir):
    clip = load_clip(tiny_clip_dir)
    rows = read_metadata(split)[:12]
    kwargs = dict(reference=reference, extractor=extractor, clip=clip, seed=3, batch_size=5, kid_subsets=5)
    a = evaluate_images(iter_images(split, rows), **kwargs)
    b = evaluate_images(iter_images(split, rows), **kwargs)
    assert a == b
    assert a["overall"]["clip_score"]["extractor"] == clip.identity and a["overall"]["clip_score"]["n"] == 12


def test_evaluate_run_streams_one_batch_of_images(extractor, reference):
    counter = AliveCounter()
    calls = []
    rng = np.random.default_rng(0)

    def generate(records, seeds):
        calls.append(list(seeds))
        for _ in records:
            yield counter.track(Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)))

    records = [{"text": f"cover {i}", "primary_genre": ["fantasy", "romance"][i % 2]} for i in range(40)]
    result = evaluate_run(generate, records, seeds=list(range(100, 140)), generation_batch_size=4,
                          reference=reference, extractor=extractor, batch_size=4, kid_subsets=3)
    assert result["n"] == 40 and calls[0] == [100, 101, 102, 103] and len(calls) == 10
    assert counter.peak <= 8  # the batch being evaluated plus the one being generated, never all 40
    assert result["overall"]["fid"]["value"] > 0
    with pytest.raises(CoverforgeError, match="one seed per record"):
        evaluate_run(generate, records, seeds=[0])


def test_extract_features_streams_and_matches_streaming_stats(extractor):
    counter = AliveCounter()

    def images():
        rng = np.random.default_rng(1)
        for _ in range(50):
            yield counter.track(Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)))

    feats = extract_features(images(), extractor, batch_size=8)
    assert feats.shape == (50, 8) and counter.peak <= 8
    stream = StreamingStats(extractor.identity)
    for chunk in torch.split(feats, 8):
        stream.update(chunk)
    np.testing.assert_allclose(stream.stats().sigma, stats_from_features(feats).sigma, rtol=1e-9, atol=1e-12)


def test_mismatched_reference_and_missing_pieces_are_refused(extractor, reference, cnn_factory, split):
    rows = read_metadata(split)[:4]
    other = module_extractor(cnn_factory(2), name="tinycnn", image_size=32)
    with pytest.raises(CoverforgeError):
        evaluate_images(iter_images(split, rows), reference=reference, extractor=other)
    with pytest.raises(CoverforgeError, match="both"):
        evaluate_images(iter_images(split, rows), reference=reference)


def test_compare_runs_and_history():
    def result(fid, n=10, ext="x"):
        return {"overall": {"fid": {"value": fid, "n": n, "extractor": ext}, "grayscale_rate": {"value": 0.1, "n": n, "extractor": "c"}}}

    table = compare_runs({"base": result(50.0), "step 500": result(40.0), "step 1000": result(30.0, n=9)})
    assert table["columns"] == ["run", "fid", "grayscale_rate"]
    assert table["rows"][1] == ["step 500", 40.0, 0.1]
    assert [note.split(":")[0] for note in table["notes"]] == ["fid", "grayscale_rate"]  # step 1000 has n=9
    history = history_from_runs({1000: result(30.0), 500: result(40.0)})
    assert [h["step"] for h in history] == [500, 1000] and history[0]["fid"] == 40.0
