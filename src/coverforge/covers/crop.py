"""Art to cover canvas: the centre crop to the cover's aspect and the record of what was kept."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class Crop:
    """The part of the source art that became the cover: centre crop to the target aspect."""

    source_size: tuple[int, int]
    box: tuple[float, float, float, float]
    """(left, top, right, bottom) in source pixels."""
    target_size: tuple[int, int]

    @property
    def scale(self) -> float:
        """Output pixels per source pixel (the same on both axes: never stretched)."""
        return self.target_size[0] / (self.box[2] - self.box[0])

    @property
    def kept_fraction(self) -> float:
        """Share of the source area kept."""
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1]) / (self.source_size[0] * self.source_size[1])


def fit_art(art: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, Crop]:
    """Centre-crop `art` to the aspect of `size` and resize it there with Lanczos."""
    art = art.convert("RGB")
    sw, sh = art.size
    tw, th = size
    if sw * th > tw * sh:  # source wider than target: trim the sides
        cw = sh * tw / th
        box = ((sw - cw) / 2, 0.0, (sw + cw) / 2, float(sh))
    else:
        ch = sw * th / tw
        box = (0.0, (sh - ch) / 2, float(sw), (sh + ch) / 2)
    return art.resize((tw, th), Image.Resampling.LANCZOS, box=box), Crop((sw, sh), box, (tw, th))
