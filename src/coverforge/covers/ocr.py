"""Read the text on an image: PP-OCR detection and recognition models run by onnxruntime.

The models are the ONNX files inside the `rapidocr` wheel. The engine is built with their paths
given explicitly, so rapidocr's model resolver and downloader are never reached: reading a cover
works with the network unplugged. Building the engine costs about a second, so it is built once
per process, on first use. Images go in as PIL images (rapidocr treats a bare array as BGR, and a
string as a path or URL).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image

from coverforge.covers.sizes import Box
from coverforge.errors import CoverforgeError

DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"
# rapidocr shrinks an image to this longer side before detection. At 1280 an ebook cover's
# smallest author type is still ~30 px high; at rapidocr's default 2000 detection took twice as
# long and read no more of the covers tried here.
MAX_SIDE = 1280
# rapidocr's defaults: detection probability a region needs, how far a detected box is grown,
# and the recognition confidence a line needs to be reported. A lone glyph ("T", "Q") scores
# about 0.5 in detection: a check that knows where the text is looks with a lower threshold.
DETECTION_SCORE = 0.5
UNCLIP_RATIO = 1.6
TEXT_SCORE = 0.5

_lock = threading.Lock()


@dataclass(frozen=True)
class TextRegion:
    """One line of text found on an image."""

    box: Box
    """Axis-aligned bounds of the detected quadrilateral, in the image's pixels."""
    text: str
    """What the recogniser read."""
    score: float
    """Recognition confidence, 0..1."""

    @property
    def area(self) -> int:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


def _model_dir() -> Path:
    try:
        import rapidocr
    except ImportError:
        raise CoverforgeError("the lettering check needs rapidocr and onnxruntime: pip install rapidocr onnxruntime") from None
    folder = Path(rapidocr.__file__).resolve().parent / "models"
    missing = [name for name in (DET_MODEL, REC_MODEL) if not (folder / name).is_file()]
    if missing:
        raise CoverforgeError(f"rapidocr at {folder} lacks its bundled models {missing}: reinstall rapidocr==3.10.0")
    return folder


@lru_cache(maxsize=1)
def ocr_engine():
    """The process's one OCR engine (built on first call; later calls return the same object)."""
    from rapidocr import RapidOCR

    folder = _model_dir()
    return RapidOCR(params={
        "Global.use_cls": False,  # covers are upright; the angle classifier only costs time
        "Global.log_level": "error",
        "Global.max_side_len": MAX_SIDE,
        "Det.model_path": str(folder / DET_MODEL),
        "Rec.model_path": str(folder / REC_MODEL),
    })


def _bounds(quad) -> Box:
    xs, ys = [float(p[0]) for p in quad], [float(p[1]) for p in quad]
    return (round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys)))


def read_text(image: Image.Image, min_score: float = TEXT_SCORE, box_thresh: float = DETECTION_SCORE) -> list[TextRegion]:
    """Every line the OCR reads on `image` with at least `min_score` confidence, in regions the
    detector scored at least `box_thresh`, in reading order (top to bottom, then left to right)."""
    engine = ocr_engine()
    # rapidocr keeps per-call settings on the engine: give every one each time, under a lock.
    with _lock:
        result = engine(image.convert("RGB"), use_det=True, use_cls=False, use_rec=True, return_word_box=False,
                        text_score=min_score, box_thresh=box_thresh, unclip_ratio=UNCLIP_RATIO)
    if result.boxes is None or result.txts is None:
        return []
    regions = [TextRegion(_bounds(q), str(t), float(s)) for q, t, s in zip(result.boxes, result.txts, result.scores)]
    return reading_order(regions)


def reading_order(regions: list[TextRegion]) -> list[TextRegion]:
    """Rows top to bottom (a region joins a row when its middle lies within the row's first
    region's height), each row left to right."""
    rows: list[list[TextRegion]] = []
    for region in sorted(regions, key=lambda r: (r.box[1] + r.box[3]) / 2):
        middle = (region.box[1] + region.box[3]) / 2
        if rows and rows[-1][0].box[1] <= middle <= rows[-1][0].box[3]:
            rows[-1].append(region)
        else:
            rows.append([region])
    return [r for row in rows for r in sorted(row, key=lambda r: r.box[0])]
