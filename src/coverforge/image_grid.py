"""Contact sheets: images fitted into a grid of square cells, each with a label line below.

Used by training-time validation, generation and evaluation alike; it needs Pillow only, so
importing the training loop or the sampler does not pull in the metrics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

LABEL_HEIGHT = 18


def image_grid(images: Sequence[Image.Image], cols: int, labels: Sequence[str] | None = None, cell: int = 192) -> Image.Image:
    """Contact sheet: each image fitted (not cropped) into a cell x cell square, a label line below."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    cols = max(1, min(cols, len(images)))
    rows = math.ceil(len(images) / cols)
    label_h = LABEL_HEIGHT if labels else 0
    sheet = Image.new("RGB", (cols * cell, rows * (cell + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, image in enumerate(images):
        thumb = image.convert("RGB")
        thumb.thumbnail((cell, cell), Image.Resampling.LANCZOS)
        x, y = (i % cols) * cell, (i // cols) * (cell + label_h)
        sheet.paste(thumb, (x + (cell - thumb.width) // 2, y + (cell - thumb.height) // 2))
        if labels:
            text = str(labels[i])
            while len(text) > 3 and draw.textlength(text, font=font) > cell - 4:
                text = text[:-2] + "…"
            draw.text((x + 2, y + cell + 2), text, fill=(0, 0, 0), font=font)
    return sheet
