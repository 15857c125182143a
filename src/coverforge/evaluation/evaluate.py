"""Evaluate a stream of (image, record) pairs: CLIP score, FID/KID, colour health, per genre.

Every figure is a dict carrying its value, its n and the extractor that produced it, because FID
is biased at small n and numbers from different extractors cannot be compared. Images are
consumed one batch at a time; only features, per-image scores and colour numbers are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from PIL import Image

from coverforge.errors import CoverforgeError
from coverforge.evaluation.clip_score import ClipBundle, clip_score
from coverforge.evaluation.colour_stats import COLOUR_METHOD, image_colour, summarise_colour
from coverforge.evaluation.features import FeatureExtractor, batched
from coverforge.evaluation.frechet import fid, stats_from_features
from coverforge.evaluation.kid import kid, kid_subset_size
from coverforge.evaluation.lettering import LETTERING_METRICS
from coverforge.evaluation.lettering import METHOD as LETTERING_METHOD
from coverforge.evaluation.lettering import summarise as summarise_lettering
from coverforge.evaluation.lettering import unread_titles
from coverforge.evaluation.reference import Reference

# Metrics in report order, and whether lower is better (for table notes and plots).
METRICS = {
    "clip_score": False, "clip_score_chunked": False, "fid": True, "kid": True,
    "grayscale_rate": True, "colourfulness": False, "saturation": False, "brightness": False,
    **LETTERING_METRICS,
}


def _figure(value: float, n: int, extractor: str, **extra) -> dict:
    return {"value": float(value), "n": int(n), "extractor": extractor, **extra}


def _distribution_figures(feats: torch.Tensor, ref_feats: torch.Tensor, extractor: str, seed: int, kid_subsets: int, kid_size: int) -> dict:
    if feats.shape[0] < 2 or ref_feats.shape[0] < 2:
        return {}
    n, n_ref = feats.shape[0], ref_feats.shape[0]
    mean, std = kid(feats, ref_feats, subsets=kid_subsets, subset_size=kid_size, seed=seed)
    return {
        "fid": _figure(fid(stats_from_features(feats, extractor), stats_from_features(ref_feats, extractor)), n, extractor, n_reference=n_ref),
        "kid": _figure(mean, n, extractor, std=std, n_reference=n_ref, subsets=kid_subsets, subset_size=kid_subset_size(n, n_ref, kid_size)),
    }


def evaluate_images(
    images: Iterable[tuple[Image.Image, dict]],
    reference: Reference | None = None,
    clip: ClipBundle | None = None,
    extractor: FeatureExtractor | None = None,
    seed: int = 0,
    batch_size: int = 16,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    on_batch: Callable[[list[Image.Image], list[dict]], None] | None = None,
    lettering: Callable[[Image.Image, dict], dict] | None = None,
) -> dict:
    """Metrics over (image, record) pairs; records give `text` (the prompt) and `primary_genre`.

    FID/KID need both `reference` and `extractor` (of the same identity); CLIP scores need `clip`.
    `on_batch` sees each batch before it is dropped (e.g. to keep thumbnails for grids).
    `lettering` (e.g. evaluation.lettering.LetteringCheck) gives per-image read-back and stray-text figures.
    """
    if (reference is None) != (extractor is None):
        raise CoverforgeError("FID/KID need both reference statistics and the feature extractor that made them")
    if reference is not None and reference.stats.extractor != extractor.identity:
        raise CoverforgeError(f"reference was computed with {reference.stats.extractor!r}, extractor is {extractor.identity!r}")
    genres: list[str] = []
    colours: list[dict] = []
    clip_first: list[float] = []
    clip_chunked: list[float] = []
    feature_batches: list[torch.Tensor] = []
    letter_rows: list[dict] = []
    letter_records: list[dict] = []
    for batch in batched(images, batch_size):
        ims = [im for im, _ in batch]
        records = [rec for _, rec in batch]
        genres += [str(r.get("primary_genre") or "unknown") for r in records]
        colours += [image_colour(im) for im in ims]
        if clip is not None:
            scores = clip_score(ims, [str(r.get("text", "")) for r in records], clip.model, clip)
            clip_first += scores["per_image"]
            clip_chunked += scores["per_image_chunked"]
        if extractor is not None:
            feats = extractor(ims)
            if feats.shape[1] != reference.features.shape[1]:
                raise CoverforgeError(f"feature widths differ: {extractor.identity} gives {feats.shape[1]} features per image, the "
                                      f"reference holds {reference.features.shape[1]}; recompute the reference with this extractor")
            feature_batches.append(feats)
        if lettering is not None:
            letter_rows += [lettering(im, rec) for im, rec in zip(ims, records)]
            letter_records += records
        if on_batch is not None:
            on_batch(ims, records)
        del batch, ims
    if not genres:
        raise CoverforgeError("no images to evaluate")
    features = torch.cat(feature_batches) if feature_batches else None

    def figures(idx: list[int], ref_genre: str | None) -> dict:
        out: dict = {}
        if clip is not None:
            out["clip_score"] = _figure(sum(clip_first[i] for i in idx) / len(idx), len(idx), clip.identity, text_window="first 75 tokens, EOS kept")
            out["clip_score_chunked"] = _figure(sum(clip_chunked[i] for i in idx) / len(idx), len(idx), clip.identity, text_window="mean over 75-token chunks")
        if features is not None:
            ref = reference.features
            if ref_genre is not None:
                ref = ref[[i for i, g in enumerate(reference.primary_genres) if g == ref_genre]]
            out.update(_distribution_figures(features[idx], ref, extractor.identity, seed, kid_subsets, kid_subset_size))
        for name, value in summarise_colour(colours[i] for i in idx).items():
            out[name] = _figure(value, len(idx), COLOUR_METHOD)
        if letter_rows:
            for name, (value, n) in summarise_lettering([letter_rows[i] for i in idx]).items():
                out[name] = _figure(value, n, LETTERING_METHOD)
        return out

    per_genre = {g: figures([i for i, x in enumerate(genres) if x == g], g) for g in sorted(set(genres))}
    overall = figures(list(range(len(genres))), None)
    return {
        "n": len(genres),
        "seed": seed,
        "extractor": extractor.identity if extractor is not None else None,
        "clip_model": clip.identity if clip is not None else None,
        "overall": overall,
        "per_genre": per_genre,
        "notes": _left_out(overall, per_genre, features, reference),
        **({"unread_titles": unread_titles(letter_rows, letter_records)} if letter_rows else {}),
    }


def _left_out(overall: dict, per_genre: dict, features: torch.Tensor | None, reference: Reference | None) -> list[str]:
    """Say which FID/KID figures are missing and why, so an absent figure is never read as a pass."""
    if features is None:
        return []
    notes = []
    if "fid" not in overall:
        notes.append(f"FID and KID left out: they need at least 2 generated and 2 reference images "
                     f"(got {features.shape[0]} and {reference.features.shape[0]})")
    thin = [g for g, figs in per_genre.items() if "fid" not in figs]
    if thin and "fid" in overall:
        notes.append(f"per-genre FID and KID left out for {', '.join(thin)}: a genre needs at least 2 generated and 2 reference images")
    return notes


def evaluate_run(
    generate_fn: Callable[[list[dict], list[int]], Iterable[Image.Image]],
    records: Sequence[dict],
    seeds: Sequence[int],
    generation_batch_size: int = 4,
    **evaluate_kwargs,
) -> dict:
    """Generate one image per (record, seed) in batches with `generate_fn` and evaluate the stream."""
    if len(records) != len(seeds):
        raise CoverforgeError(f"{len(records)} records but {len(seeds)} seeds: give one seed per record")

    def stream() -> Iterator[tuple[Image.Image, dict]]:
        for start in range(0, len(records), generation_batch_size):
            recs = [dict(r) for r in records[start : start + generation_batch_size]]
            sds = [int(s) for s in seeds[start : start + generation_batch_size]]
            images = list(generate_fn(recs, sds))
            if len(images) != len(recs):
                raise CoverforgeError(f"generate_fn returned {len(images)} images for {len(recs)} records")
            for image, rec, s in zip(images, recs, sds):
                yield image, {**rec, "seed": s}

    return evaluate_images(stream(), **evaluate_kwargs)


def compare_runs(labelled: dict[str, dict], metrics: Sequence[str] | None = None) -> dict:
    """One row per labelled evaluation (e.g. base, step 500), one column per overall metric.

    Notes flag columns whose n or extractor differ between rows, where figures are not comparable.
    """
    names = list(metrics) if metrics else [m for m in METRICS if any(m in r["overall"] for r in labelled.values())]
    rows, notes = [], []
    for label, result in labelled.items():
        rows.append([label] + [result["overall"].get(m, {}).get("value") for m in names])
    for m in names:
        keys = {(r["overall"][m]["n"], r["overall"][m]["extractor"]) for r in labelled.values() if m in r["overall"]}
        if len(keys) > 1:
            notes.append(f"{m}: runs differ in n or extractor ({sorted(keys)}); not directly comparable")
    return {"columns": ["run", *names], "rows": rows, "notes": notes, "lower_is_better": {m: METRICS.get(m, False) for m in names}}


def history_from_runs(by_step: dict[int, dict]) -> list[dict]:
    """[{"step": s, metric: value, ...}] from evaluations keyed by training step, for report plots."""
    return [{"step": int(s), **{m: f["value"] for m, f in r["overall"].items()}} for s, r in sorted(by_step.items())]
