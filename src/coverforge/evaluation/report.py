"""Readable evaluation output: metrics.json, report.md and a self-contained report.html.

Tables list every figure with its n and extractor; grids are contact sheets (base64 PNG inside
the HTML, PNG files beside the Markdown); metric-over-step plots are inline SVG, no matplotlib.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

from PIL import Image

from coverforge.evaluation.evaluate import METRICS
from coverforge.image_grid import image_grid


class GridCollector:
    """`on_batch` hook for evaluate_images: keeps the first few thumbnails of each genre."""

    def __init__(self, per_genre: int = 8, thumb: int = 192) -> None:
        self.per_genre, self.thumb = per_genre, thumb
        self.kept: dict[str, list[tuple[Image.Image, str]]] = {}

    def __call__(self, images: list[Image.Image], records: list[dict]) -> None:
        for image, rec in zip(images, records):
            slot = self.kept.setdefault(str(rec.get("primary_genre") or "unknown"), [])
            if len(slot) < self.per_genre:
                small = image.convert("RGB")
                small.thumbnail((self.thumb, self.thumb))
                slot.append((small, str(rec.get("title") or rec.get("file_name") or f"seed {rec.get('seed', '')}")))

    def grids(self, cols: int = 4, prefix: str = "") -> dict[str, Image.Image]:
        return {f"{prefix}{g}": image_grid([im for im, _ in kept], cols, [t for _, t in kept], self.thumb) for g, kept in sorted(self.kept.items())}


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-2 and value != 0 else f"{value:.3f}"
    return str(value)


def _overall_table(result: dict) -> tuple[list[str], list[list]]:
    header = ["metric", "value", "± std", "n", "n reference", "extractor"]
    rows = [[m, f["value"], f.get("std"), f["n"], f.get("n_reference"), f["extractor"]] for m, f in result["overall"].items()]
    if any("baseline" in f for f in result["overall"].values()):  # figures that carry what they compare with
        header.append("baseline")
        for row, f in zip(rows, result["overall"].values()):
            row.append("; ".join(f"{k} {_fmt(v)}" for k, v in f.get("baseline", {}).items()))
    return header, rows


def _genre_table(result: dict) -> tuple[list[str], list[list]]:
    names = [m for m in METRICS if any(m in g for g in result["per_genre"].values())]
    names += [m for g in result["per_genre"].values() for m in g if m not in names and m not in METRICS]  # a run's own figures
    names = list(dict.fromkeys(names))
    rows = []
    for genre, figs in result["per_genre"].items():
        n = next(iter(figs.values()))["n"] if figs else 0
        rows.append([genre, n] + [figs.get(m, {}).get("value") for m in names])
    return ["genre", "n", *names], rows


def _markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def metric_plot_svg(history: list[dict], metric: str, width: int = 420, height: int = 220) -> str | None:
    """Inline SVG line plot of one metric against training step; None where no point has it."""
    points = sorted((float(h["step"]), float(h[metric])) for h in history if h.get(metric) is not None)
    if not points:
        return None
    left, right, top, bottom = 56, 12, 24, 32
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    pad = (max(ys) - min(ys)) * 0.1 or abs(ys[0]) * 0.1 or 1.0
    y0, y1 = min(ys) - pad, max(ys) + pad

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * (height - top - bottom)

    path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(points))
    dots = "".join(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3"><title>step {x:g}: {y:.4g}</title></circle>' for x, y in points)
    ticks = "".join(
        f'<text x="{left - 4}" y="{sy(v) + 4:.1f}" text-anchor="end">{v:.3g}</text>' for v in (y0 + pad, (y0 + y1) / 2, y1 - pad)
    )
    xticks = "".join(f'<text x="{sx(x):.1f}" y="{height - 12}" text-anchor="middle">{x:g}</text>' for x in sorted(set(xs)))
    better = "lower is better" if METRICS.get(metric) else "higher is better"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="10">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<text x="{left}" y="14" font-size="12">{html.escape(metric)} ({better})</text>'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#888"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#888"/>'
        f'{ticks}{xticks}<path d="{path}" fill="none" stroke="#2463a6" stroke-width="2"/><g fill="#2463a6">{dots}</g></svg>'
    )


def _png_b64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "grid"


def _sections(metrics: dict) -> list[tuple[str, list[str], list[list]]]:
    """(title, header, rows) for every table in the report."""
    runs = metrics["runs"] if "runs" in metrics else {"": metrics}
    out = []
    if "comparison" in metrics:
        out.append(("Comparison (same seeds)", metrics["comparison"]["columns"], metrics["comparison"]["rows"]))
    for label, result in runs.items():
        suffix = f" — {label}" if label else ""
        out.append((f"Overall{suffix}", *_overall_table(result)))
        out.append((f"Per genre{suffix}", *_genre_table(result)))
        if result.get("unread_titles"):  # lettering was checked and some typeset titles did not read back
            rows = [[u["file"], u["genre"], u["title"], u["read"], u["cer"]] for u in result["unread_titles"]]
            out.append((f"Typeset titles that did not read back{suffix}", ["image", "genre", "title", "OCR read", "CER"], rows))
    return out


def write_report(metrics: dict, out_dir: str | Path, grids: dict[str, Image.Image] | None = None, history: list[dict] | None = None) -> Path:
    """Write metrics.json, report.md (+ grids/*.png, plots/*.svg) and report.html; returns out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    grids = grids or {}
    history = history or []
    plots = {m: svg for m in METRICS if (svg := metric_plot_svg(history, m))}
    notes = metrics.get("notes", []) + metrics.get("comparison", {}).get("notes", [])
    notes += [f"{label}: {note}" for label, run in metrics.get("runs", {}).items() for note in run.get("notes", [])]

    md = ["# coverforge evaluation", ""]
    page = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>coverforge evaluation</title><style>",
            "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}",
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}",
            ".plots svg{margin:4px;border:1px solid #eee}img{max-width:100%}</style></head><body><h1>coverforge evaluation</h1>"]
    for title, header, rows in _sections(metrics):
        md += [f"## {title}", "", _markdown_table(header, rows), ""]
        page.append(f"<h2>{html.escape(title)}</h2>{_html_table(header, rows)}")
    for note in notes:
        md.append(f"> note: {note}")
        page.append(f"<p><em>note: {html.escape(note)}</em></p>")
    if plots:
        (out / "plots").mkdir(exist_ok=True)
        md += ["## Metrics over training steps", ""]
        page.append("<h2>Metrics over training steps</h2><div class='plots'>")
        for m, svg in plots.items():
            (out / "plots" / f"{m}.svg").write_text(svg, encoding="utf-8")
            md.append(f"![{m}](plots/{m}.svg)")
            page.append(svg)
        page.append("</div>")
        md.append("")
    if grids:
        (out / "grids").mkdir(exist_ok=True)
        md += ["## Image grids", ""]
        page.append("<h2>Image grids</h2>")
        for name, grid in grids.items():
            grid.save(out / "grids" / f"{_slug(name)}.png")
            md += [f"### {name}", "", f"![{name}](grids/{_slug(name)}.png)", ""]
            page.append(f"<h3>{html.escape(name)}</h3><img alt='{html.escape(name)}' src='data:image/png;base64,{_png_b64(grid)}'>")
    page.append("</body></html>")
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (out / "report.html").write_text("\n".join(page) + "\n", encoding="utf-8")
    return out
