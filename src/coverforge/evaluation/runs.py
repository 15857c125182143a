"""Evaluate a run folder: generate the validation books with fixed seeds through the one
generation function, at the final weights, at every checkpoint and for the base model."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from coverforge.config import load_config
from coverforge.evaluation.evaluate import compare_runs, evaluate_run, history_from_runs
from coverforge.evaluation.report import GridCollector
from coverforge.run_folder import RunFolder, checkpoint_step


def parse_seeds(spec: str) -> list[int]:
    """'0..3' -> [0, 1, 2, 3]; '0,5,9' -> [0, 5, 9]."""
    from coverforge.errors import CoverforgeError

    try:
        if ".." in spec:
            lo, hi = (int(x) for x in spec.split(".."))
            return list(range(lo, hi + 1))
        return [int(x) for x in spec.split(",")]
    except ValueError:
        raise CoverforgeError(f"--seeds {spec!r} must look like 0..3 or 0,5,9") from None


def evaluate_run_folder(run: str | Path, records: list[dict], seeds: list[int], checkpoints: bool = False,
                        compare_base: bool = False, batch_size: int = 4, **evaluate_kwargs) -> tuple[dict, dict, list[dict]]:
    """(metrics for write_report, grids, history). Every variant sees the same books and seeds."""
    from coverforge.sampling.from_run import load_checkpoint_generator, load_run_generator
    from coverforge.sampling.generate import generate

    folder = RunFolder(run).require_finished()
    cfg = load_config(folder.config)
    # Every book with every seed: (record, seed) pairs in a fixed order.
    pairs = [(r, seed) for r in records for seed in seeds]

    def fn_for(gen):
        def generate_fn(recs: list[dict], sds: list[int]) -> list[Image.Image]:
            return generate(gen, [r["text"] for r in recs], sds, cfg.sample)
        return generate_fn

    variants: dict[str, object] = {}
    if compare_base:
        variants["base"] = lambda: load_run_generator(run, base=True)[0]
    by_step: dict[int, dict] = {}
    if checkpoints:
        for ckpt in folder.complete_checkpoints():
            variants[f"step {checkpoint_step(ckpt)}"] = lambda c=ckpt: load_checkpoint_generator(c)
    variants["final"] = lambda: load_run_generator(run)[0]
    results, grids = {}, {}
    for label, make in variants.items():
        collector = GridCollector(per_genre=4)
        results[label] = evaluate_run(fn_for(make()), [r for r, _ in pairs], [sd for _, sd in pairs], batch_size,
                                      on_batch=collector, **evaluate_kwargs)
        grids.update(collector.grids(prefix=f"{label}: "))
        if label.startswith("step "):
            by_step[int(label.split()[1])] = results[label]
    metrics = {"runs": results, "comparison": compare_runs(results)} if len(results) > 1 else results["final"]
    return metrics, grids, history_from_runs(by_step)
