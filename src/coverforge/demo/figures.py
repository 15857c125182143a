"""The demo's figures, each beside the baseline that says what it means, overall and per genre.

- genre alignment (the judge's verdict) beside chance and a flat cover of each genre's mean
  colour, at the shipped guidance and at guidance 1 (no classifier-free guidance);
- Fréchet distances (the judge's features, pixel PCA) beside their real-vs-real floor;
- high-frequency energy (grain or blur) of the generated covers over the real ones' at the same size;
- diversity: covers drawn for one book with several seeds, their mean pixel distance over that of
  real covers of the book's genre;
- motif: is the genre's motif (moon, planet, heart or flower, slashes, frame) drawn where the
  real cover of the book has one, with the detector's own check on real, blurred and flat covers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from coverforge.data.buckets import fit_to_bucket
from coverforge.demo.motifs import MotifDetector, blur, book_motif
from coverforge.evaluation.floor import PixelPCA, frechet, real_floor
from coverforge.evaluation.sharpness import high_frequency_energy

PCA_COMPONENTS = 20


@dataclass
class DemoImages:
    """Everything the figures are computed from; real covers at the generator's size."""

    size: tuple[int, int]
    genres: list[str]
    generated: list[Image.Image]
    """One per held-out book, at the shipped guidance."""
    unguided: list[Image.Image]
    """The same books and seeds at guidance 1."""
    labels: np.ndarray
    """Genre id of each held-out book."""
    real_val: list[Image.Image]
    real_train: list[Image.Image]
    train_labels: np.ndarray
    val_motifs: list[dict | None]
    train_motifs: list[dict | None]
    repeats: dict[int, list[Image.Image]]
    """Held-out book index -> covers drawn for it with several seeds."""


def at_size(images: list[Image.Image], size: tuple[int, int]) -> list[Image.Image]:
    return [im if im.size == size else fit_to_bucket(im.convert("RGB"), size)[0] for im in images]


def flat_covers(images: DemoImages) -> list[Image.Image]:
    """The flat baseline: each held-out book's cover painted in its genre's mean colour (real training covers)."""
    colours = {}
    for k in range(len(images.genres)):
        pixels = [np.asarray(im, dtype=np.float64).reshape(-1, 3).mean(0) for im, lab in zip(images.real_train, images.train_labels) if lab == k]
        colours[k] = tuple(int(round(c)) for c in np.mean(pixels, axis=0)) if pixels else (128, 128, 128)
    return [Image.new("RGB", images.size, colours[int(k)]) for k in images.labels]


def _fig(value: float, n: int, extractor: str, **baseline) -> dict:
    out = {"value": float(value), "n": int(n), "extractor": extractor}
    if baseline:
        out["baseline"] = {k: (float(v) if v is not None else None) for k, v in baseline.items()}
    return out


def _pairwise(images: list[Image.Image]) -> float:
    """Mean RMS pixel distance (0..1 scale) over all pairs."""
    x = np.array([np.asarray(im, dtype=np.float64).ravel() / 255.0 for im in images])
    d = [np.sqrt(((x[i] - x[j]) ** 2).mean()) for i in range(len(x)) for j in range(i + 1, len(x))]
    return float(np.mean(d)) if d else float("nan")


def compute_figures(images: DemoImages, judge, seed: int) -> tuple[dict, dict, dict]:
    """(overall, per_genre, detector check) figures."""
    size, labels, n = images.size, images.labels, len(images.generated)
    chance = 1.0 / len(images.genres)
    flat = flat_covers(images)
    train_labels = images.train_labels

    pred = {name: judge.predict(ims) for name, ims in
            (("generated", images.generated), ("unguided", images.unguided), ("flat", flat), ("real", images.real_val))}
    hits = {name: p == labels for name, p in pred.items()}

    # Fréchet distances, each with the floor of real covers from the training split (disjoint from the reference).
    judge_feats = {name: judge.features(ims) for name, ims in (("generated", images.generated), ("unguided", images.unguided),
                                                               ("real", images.real_val), ("train", images.real_train))}
    pca = PixelPCA(images.real_train, size, PCA_COMPONENTS)
    pca_feats = {name: pca.features(ims) for name, ims in (("generated", images.generated), ("unguided", images.unguided),
                                                           ("real", images.real_val), ("train", images.real_train))}
    # The pixel PCA is fitted on the training covers the floor draws from: it favours them, if anything,
    # so the floor is if anything low and the ratio to it conservative.

    def frechet_fig(feats: dict, which: str, extractor: str) -> dict:
        value = frechet(feats[which], feats["real"])
        floor = real_floor(feats["train"], train_labels, feats["real"], labels, seed=seed)
        return _fig(value, n, extractor, real_floor=floor, ratio_to_floor=value / floor, flat_cover=frechet(
            judge.features(flat) if extractor == "judge" else pca.features(flat), feats["real"]) if len(set(labels.tolist())) > 1 else None)

    hf = {name: np.array([high_frequency_energy(im, size) for im in ims]) for name, ims in
          (("generated", images.generated), ("unguided", images.unguided), ("real", images.real_val), ("train", images.real_train))}
    hf_real = hf["real"].mean()

    detector = MotifDetector(size)
    calibration = detector.calibrate(images.real_train, [m["name"] if m else None for m in images.train_motifs])
    checked = [i for i, m in enumerate(images.val_motifs) if m and m["name"] in detector.thresholds]

    def motif_rate(ims: list[Image.Image], idx: list[int]) -> float:
        return float(np.mean([detector.present(ims[i], images.val_motifs[i]["name"]) for i in idx])) if idx else float("nan")

    blurred = [blur(im, size) for im in images.real_val]
    diversity_real = {k: _pairwise([im for im, lab in zip(images.real_val, labels) if lab == k][:6]) for k in set(labels.tolist())}
    repeats = {i: _pairwise(ims) for i, ims in images.repeats.items()}

    overall = {
        "genre_alignment": _fig(hits["generated"].mean(), n, "judge", chance=chance, flat_cover=hits["flat"].mean(),
                                real_covers=hits["real"].mean()),
        "genre_alignment_guidance_1": _fig(hits["unguided"].mean(), n, "judge", chance=chance, flat_cover=hits["flat"].mean()),
        "frechet_judge": frechet_fig(judge_feats, "generated", "judge"),
        "frechet_judge_guidance_1": frechet_fig(judge_feats, "unguided", "judge"),
        f"frechet_pixel_pca{PCA_COMPONENTS}": frechet_fig(pca_feats, "generated", f"pixel-pca{PCA_COMPONENTS}"),
        f"frechet_pixel_pca{PCA_COMPONENTS}_guidance_1": frechet_fig(pca_feats, "unguided", f"pixel-pca{PCA_COMPONENTS}"),
        "high_frequency_ratio": _fig(hf["generated"].mean() / hf_real, n, "mean |laplacian|", real_train=hf["train"].mean() / hf_real,
                                     generated=hf["generated"].mean(), real=hf_real),
        "high_frequency_ratio_guidance_1": _fig(hf["unguided"].mean() / hf_real, n, "mean |laplacian|"),
        "motif_present": _fig(motif_rate(images.generated, checked), len(checked), "motif template",
                              real_covers=motif_rate(images.real_val, checked), blurred_real=motif_rate(blurred, checked),
                              flat_cover=motif_rate(flat, checked)),
        "motif_present_guidance_1": _fig(motif_rate(images.unguided, checked), len(checked), "motif template"),
    }
    if repeats:
        gen_div = np.mean(list(repeats.values()))
        real_div = np.mean([diversity_real[int(labels[i])] for i in repeats])
        overall["diversity_one_book"] = _fig(gen_div / real_div, len(repeats), "pixel rms", generated=gen_div, real_same_genre=real_div)

    per_genre = {}
    for k, genre in enumerate(images.genres):
        idx = np.flatnonzero(labels == k)
        if not len(idx):
            continue
        motif_idx = [i for i in checked if labels[i] == k]
        names = sorted({images.val_motifs[i]["name"] for i in motif_idx})
        figs = {
            "genre_alignment": _fig(hits["generated"][idx].mean(), len(idx), "judge", chance=chance, flat_cover=hits["flat"][idx].mean()),
            "genre_alignment_guidance_1": _fig(hits["unguided"][idx].mean(), len(idx), "judge"),
            "high_frequency_ratio": _fig(hf["generated"][idx].mean() / hf["real"][idx].mean(), len(idx), "mean |laplacian|"),
            "motif_present": _fig(motif_rate(images.generated, motif_idx), len(motif_idx), "/".join(names) or "motif template",
                                  real_covers=motif_rate(images.real_val, motif_idx)),
        }
        book = [i for i in images.repeats if labels[i] == k]
        if book:
            figs["diversity_one_book"] = _fig(np.mean([repeats[i] for i in book]) / diversity_real[k], len(book), "pixel rms")
        per_genre[genre] = figs
    check = {name: {**c, "blurred_real_val": motif_rate(blurred, [i for i in checked if images.val_motifs[i]["name"] == name])}
             for name, c in calibration.items()}
    return overall, per_genre, check


def motif_of(motifs: dict[int, list[dict]], record: dict) -> dict | None:
    """The motif a held-out or training record's real cover is checked for (by its catalogue row)."""
    return book_motif(motifs.get(int(record["source_row"]), []))
