"""The genre judge: held-out accuracy, no genre claims on noise, determinism, save/load."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from coverforge.demo.catalogue import GENRES, primary_genre_ids
from coverforge.demo.judge import Judge, train_judge
from coverforge.errors import CoverforgeError

N_TRAIN = 300


@pytest.fixture(scope="module")
def data(catalogue):
    labels = primary_genre_ids([r["genres"] for r in catalogue["rows"]])
    images = [Image.open(catalogue["dir"] / "images" / f"{i}.jpg").convert("RGB") for i in range(len(labels))]
    return images, np.array(labels)


@pytest.fixture(scope="module")
def judge(data):
    images, labels = data
    start = time.process_time()
    trained = train_judge(images[:N_TRAIN], labels[:N_TRAIN].tolist(), num_classes=len(GENRES), seed=0)
    trained.train_seconds = time.process_time() - start
    return trained


def test_held_out_accuracy(judge, data):
    images, labels = data
    accuracy = (judge.predict(images[N_TRAIN:]) == labels[N_TRAIN:]).mean()
    print(f"judge held-out accuracy {accuracy:.3f}, trained in {judge.train_seconds:.1f} s CPU")
    assert accuracy >= 0.95
    assert judge.train_seconds < 30.0


def test_reads_soft_low_resolution_covers(judge, data):
    """Generated covers are blurry; a 12x18 thumbnail blown back up must still read as its genre."""
    images, labels = data
    soft = [im.resize((12, 18), Image.BOX).resize((32, 48), Image.BICUBIC) for im in images[N_TRAIN:]]
    assert (judge.predict(soft) == labels[N_TRAIN:]).mean() >= 0.9


def test_does_not_claim_prompted_genre_without_evidence(judge, data):
    images, labels = data
    rng = np.random.default_rng(1)
    noise = [Image.fromarray(rng.integers(0, 256, (48, 32, 3), dtype=np.uint8)) for _ in range(120)]
    prompted = rng.integers(0, len(GENRES), 120)
    assert (judge.predict(noise) == prompted).mean() < 0.35  # chance is 1/6
    wrong = (labels[N_TRAIN:] + rng.integers(1, len(GENRES), len(labels) - N_TRAIN)) % len(GENRES)
    assert (judge.predict(images[N_TRAIN:]) == wrong).mean() <= 0.05
    shuffled = rng.permutation(labels[N_TRAIN:])
    assert (judge.predict(images[N_TRAIN:]) == shuffled).mean() < 0.4


def test_outputs_and_save_load_round_trip(judge, data, tmp_path):
    images = data[0][N_TRAIN:]
    probs = judge.probabilities(images)
    assert probs.shape == (len(images), len(GENRES)) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (probs.argmax(1) == judge.predict(images)).all()
    features = judge.features(images)
    assert features.shape == (len(images), judge.config.feature_dim) and np.isfinite(features).all()
    assert features.std(0).mean() > 0
    loaded = Judge.load(judge.save(tmp_path / "judge"))
    assert loaded.config == judge.config
    np.testing.assert_array_equal(loaded.probabilities(images), probs)
    np.testing.assert_array_equal(loaded.features(images), features)


def test_same_seed_same_judge_and_caller_state_untouched(data):
    images, labels = data[0][:48], data[1][:48].tolist()
    before, threads = torch.get_rng_state(), torch.get_num_threads()
    a = train_judge(images, labels, num_classes=len(GENRES), seed=5, epochs=2, width=8)
    b = train_judge(images, labels, num_classes=len(GENRES), seed=5, epochs=2, width=8)
    c = train_judge(images, labels, num_classes=len(GENRES), seed=6, epochs=2, width=8)
    assert torch.equal(torch.get_rng_state(), before) and torch.get_num_threads() == threads
    np.testing.assert_array_equal(a.probabilities(images), b.probabilities(images))
    assert not np.array_equal(a.probabilities(images), c.probabilities(images))


def test_user_errors(tmp_path, data):
    images = data[0][:4]
    with pytest.raises(CoverforgeError, match="labels"):
        train_judge(images, [0, 1], num_classes=6)
    with pytest.raises(CoverforgeError, match="outside"):
        train_judge(images, [0, 1, 2, 9], num_classes=6)
    with pytest.raises(CoverforgeError, match="judge.safetensors"):
        Judge.load(tmp_path)
