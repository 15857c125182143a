import base64
import json
import re
from html.parser import HTMLParser

from PIL import Image

from coverforge.evaluation.evaluate import compare_runs, history_from_runs
from coverforge.evaluation.report import GridCollector, metric_plot_svg, write_report
from coverforge.image_grid import image_grid


def fake_result(fid, gray):
    figs = {"fid": {"value": fid, "n": 12, "n_reference": 30, "extractor": "tinycnn:1:abc"},
            "grayscale_rate": {"value": gray, "n": 12, "extractor": "colour"}}
    return {"n": 12, "seed": 0, "overall": figs, "per_genre": {"fantasy": figs, "romance": figs}}


class Structure(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.srcs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


def test_image_grid_layout_and_labels():
    images = [Image.new("RGB", (40, 60), c) for c in ["red", "green", "blue", "white", "black"]]
    grid = image_grid(images, cols=3, labels=[f"book {i}" for i in range(5)], cell=64)
    assert grid.size == (3 * 64, 2 * (64 + 18))
    assert grid.getpixel((32, 32)) == (255, 0, 0)  # first cover centred in its cell, not cropped away
    assert grid.getpixel((64 + 32, 64 + 18 + 32)) == (0, 0, 0)  # fifth: row 2, column 2
    label_band = grid.crop((0, 64, 64, 64 + 18)).convert("L")
    assert min(label_band.getdata()) < 128  # some text was drawn


def test_write_report_with_comparison_history_and_grids(tmp_path):
    runs = {"base": fake_result(50.0, 0.4), "step 500": fake_result(40.0, 0.2), "step 1000": fake_result(35.0, 0.1)}
    metrics = {"runs": runs, "comparison": compare_runs(runs)}
    history = history_from_runs({0: runs["base"], 500: runs["step 500"], 1000: runs["step 1000"]})
    collector = GridCollector(per_genre=2, thumb=48)
    collector([Image.new("RGB", (30, 45), "red")] * 3, [{"primary_genre": "fantasy", "title": "T"}] * 3)
    out = write_report(metrics, tmp_path, grids=collector.grids(cols=2), history=history)

    assert json.loads((out / "metrics.json").read_text())["runs"]["step 500"]["overall"]["fid"]["value"] == 40.0
    md = (out / "report.md").read_text()
    assert "| step 1000 | 35.000 | 0.100 |" in md and "## Per genre — base" in md
    assert "![fid](plots/fid.svg)" in md and (out / "plots" / "fid.svg").is_file() and (out / "grids" / "fantasy.png").is_file()

    page = (out / "report.html").read_text()
    parser = Structure()
    parser.feed(page)
    assert parser.tags.count("table") == 1 + 2 * 3 and parser.tags.count("svg") == 2
    png = base64.b64decode(parser.srcs[0].split(",", 1)[1])
    assert parser.srcs[0].startswith("data:image/png;base64,") and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http" not in re.sub(r'xmlns="http://www.w3.org/2000/svg"', "", page)  # self-contained


def test_metric_plot_points_follow_the_values():
    svg = metric_plot_svg([{"step": 0, "fid": 50.0}, {"step": 100, "fid": 30.0}, {"step": 50, "other": 1}], "fid")
    ys = [float(y) for y in re.findall(r'cy="([0-9.]+)"', svg)]
    assert len(ys) == 2 and ys[0] < ys[1]  # higher FID drawn higher up (smaller y)
    assert metric_plot_svg([{"step": 0}], "fid") is None
