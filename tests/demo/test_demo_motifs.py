"""The motif figure's detector: the catalogue records each cover's motifs, and the detector,
calibrated on some real covers, finds them on other real covers and not on covers without them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from coverforge.data.buckets import fit_to_bucket
from coverforge.demo.art import paint_cover
from coverforge.demo.catalogue import GENRES, load_motifs
from coverforge.demo.motifs import SEARCH, MotifDetector, book_motif, render_mask
from coverforge.errors import CoverforgeError

SIZE = (32, 48)


def test_recording_motifs_leaves_the_cover_unchanged():
    for genre in GENRES:
        motifs: list[dict] = []
        with_record = paint_cover(genre, np.random.default_rng(7), (64, 96), motifs)
        plain = paint_cover(genre, np.random.default_rng(7), (64, 96))
        assert np.array_equal(np.asarray(with_record), np.asarray(plain)), genre
        assert book_motif(motifs) is not None, f"{genre}: no detectable motif recorded"


def test_every_recorded_motif_lies_in_the_detector_search(catalogue):
    """The search ranges mirror the painters' (art.py); a painter change that leaves them must fail here."""
    for row, motifs in load_motifs(catalogue["dir"]).items():
        m = book_motif(motifs)
        s = SEARCH[m["name"]]
        assert s.cx[0] <= m["cx"] <= s.cx[1] and s.cy[0] <= m["cy"] <= s.cy[1] and s.r[0] <= m["r"] <= s.r[1], (row, m)
        if s.shape == "band":
            assert s.slope[0] <= abs(m["slope"]) <= s.slope[1], (row, m)


def test_mask_is_the_drawn_disc():
    mask = render_mask("disc", SIZE, 0.5, 0.5, 0.25)
    assert mask.shape == (48, 32) and mask[24, 16] == 1.0 and mask[0, 0] == 0.0
    assert abs(mask.sum() - np.pi * 8**2) < 0.05 * np.pi * 8**2  # radius 8 px


def test_missing_motif_file_is_one_line(tmp_path):
    with pytest.raises(CoverforgeError, match="motifs.jsonl is missing"):
        load_motifs(tmp_path)


@pytest.fixture(scope="module")
def covers(catalogue):
    motifs = load_motifs(catalogue["dir"])
    images, names = [], []
    for row in range(len(catalogue["rows"])):
        with Image.open(catalogue["dir"] / "images" / f"{row}.jpg") as im:
            images.append(fit_to_bucket(im.convert("RGB"), SIZE)[0])
        names.append(book_motif(motifs[row])["name"])
    return images, names


@pytest.mark.slow
def test_detector_finds_motifs_on_held_out_real_covers_only(covers):
    """Calibrated on 240 covers, checked on 120 others: found on >= 90% of those with the motif, on
    <= 20% of other genres' covers (planets and slashes are sometimes seen in a moon: measured
    14-18%), and never on a flat cover."""
    images, names = covers
    detector = MotifDetector(SIZE)
    report = detector.calibrate(images[:240], names[:240])
    assert set(report) == set(SEARCH)
    held, held_names = images[240:], names[240:]
    for name in SEARCH:
        own = [im for im, n in zip(held, held_names) if n == name]
        others = [im for im, n in zip(held, held_names) if n != name and {n, name} != {"heart", "flower"}]
        assert own, name
        found = np.mean([detector.present(im, name) for im in own])
        false = np.mean([detector.present(im, name) for im in others])
        assert found >= 0.9, (name, found)
        assert false <= 0.2, (name, false)
        assert not detector.present(Image.new("RGB", SIZE, tuple(np.asarray(own[0]).reshape(-1, 3).mean(0).astype(int))), name)
