import math

import numpy as np
import pytest
from PIL import Image

from coverforge.data.buckets import assign_bucket, fit_to_bucket, make_buckets


@pytest.mark.parametrize("resolution", [512, 1024])
@pytest.mark.parametrize("ratio", [2 / 3, 1 / 1.6, 3 / 2, 1.6])
def test_cover_ratios_have_near_exact_buckets(resolution, ratio):
    buckets = make_buckets(resolution)
    w, h = assign_bucket(round(3000 * ratio), 3000, buckets)
    assert abs((w / h) / ratio - 1) < 0.01
    assert 0.9 <= w * h / resolution**2 <= 1.0


@pytest.mark.parametrize("resolution", [256, 512, 768, 1024])
def test_buckets_are_multiples_of_8_and_about_the_area(resolution):
    buckets = make_buckets(resolution, step=64, max_aspect=2.0)
    assert (resolution, resolution) in buckets
    for w, h in buckets:
        assert w % 8 == 0 and h % 8 == 0
        assert 0.5 <= w / h <= 2.0
        # Never more pixels than the square (a batch that fits at the square size fits everywhere).
        assert 0.9 * resolution**2 <= w * h <= resolution**2
    generic = [b for b in buckets if b[0] % 64 == 0 and b[1] % 64 == 0]
    assert len(generic) >= len(buckets) - 4  # only the cover-ratio buckets use a finer step


def test_assign_bucket_uses_log_aspect():
    buckets = [(512, 512), (384, 704), (704, 384)]
    assert assign_bucket(100, 180, buckets) == (384, 704)
    assert assign_bucket(180, 100, buckets) == (704, 384)
    assert assign_bucket(100, 101, buckets) == (512, 512)


def test_fit_to_bucket_never_squashes_and_crops_centred():
    # A 2:3 cover with a vertical stripe exactly at its centre.
    arr = np.zeros((900, 600, 3), dtype=np.uint8)
    arr[:, 295:305] = 255
    image = Image.fromarray(arr)
    bucket = (416, 672)  # 1:1.615, slightly taller than 2:3
    out, (top, left) = fit_to_bucket(image, bucket)
    assert out.size == bucket
    assert top == 0 and left > 0  # width is trimmed, height is not
    scale = 672 / 900
    assert abs(left - (round(600 * scale) - 416) // 2) <= 1
    # only the aspect mismatch is cropped (here 2:3 into 1:1.615, about 7%), nothing more
    assert abs(2 * left / (600 * scale) - (1 - (416 / 672) / (600 / 900))) < 0.01
    col = np.asarray(out)[:, :, 0].mean(axis=0)
    centre = np.flatnonzero(col > 128).mean()
    assert abs(centre - 208) <= 2  # still centred: aspect kept, not squashed


def test_fit_to_bucket_exact_ratio_has_no_crop():
    image = Image.new("RGB", (600, 900), "red")
    out, crop = fit_to_bucket(image, (416, 624))
    assert out.size == (416, 624) and crop == (0, 0)
    assert math.isclose(416 / 624, 600 / 900)


@pytest.mark.parametrize("resolution", [40, 80, 128])
def test_small_training_sizes_never_exceed_the_square(resolution):
    # The demo (40 px) and benchmarks (128 px) train at the latent grid's finer steps.
    for step in (8, 16, 64):
        for w, h in make_buckets(resolution, step=min(step, resolution)):
            assert w * h <= resolution**2
    assert assign_bucket(200, 300, make_buckets(40, step=8)) == (32, 48)  # the demo's covers: exact 2:3
    assert assign_bucket(200, 300, make_buckets(80, step=8)) == (64, 96)


def test_sdxl_size_cover_buckets_are_exact_and_within_the_area():
    buckets = make_buckets(1024, step=64)
    assert assign_bucket(2000, 3000, buckets) == (832, 1248)  # 2:3
    assert assign_bucket(1000, 1600, buckets) == (800, 1280)  # 1:1.6, was 832x1344 (+6.6% pixels)


def test_training_buckets_keep_the_latent_grid_divisible_by_4():
    # An SD VAE (8x) and SDXL's three-level UNet: buckets step by 64 px, cover buckets by 32 at the finest,
    # so every latent side divides by 4 and no UNet level rounds up.
    from types import SimpleNamespace

    from coverforge.config import config_from_dict
    from coverforge.training.inputs import make_dataset

    parts = SimpleNamespace(family="sdxl", vae=SimpleNamespace(config=SimpleNamespace(block_out_channels=[128, 256, 512, 512])),
                            unet=SimpleNamespace(config=SimpleNamespace(block_out_channels=[320, 640, 1280])))
    cfg = config_from_dict({"model": {"path": "unused"}, "data": {"resolution": 1024}})
    shapes = [(2000, 3000), (1000, 1600), (3000, 4000), (1000, 1000), (3000, 2000), (900, 1500)]
    records = [{"width": w, "height": h, "path": "", "text": ""} for w, h in shapes]
    ds = make_dataset(cfg, parts, records)
    assert all(w % 32 == 0 and h % 32 == 0 and w * h <= 1024**2 for w, h in ds.buckets)
    assert ds.buckets[:2] == [(832, 1248), (800, 1280)]  # the cover ratios stay exact at 1024
    cfg.data.resolution = 128
    assert all(w % 32 == 0 and h % 32 == 0 for w, h in make_dataset(cfg, parts, records).buckets)


def test_dataset_ratios_pool_near_sizes_and_need_a_batch():
    from coverforge.data.buckets import dataset_ratios

    sizes = [(300, 475), (318, 500), (320, 504)] * 3 + [(300, 400)] * 4 + [(500, 300)] * 3
    ratios = dataset_ratios(sizes, min_images=4)
    assert len(ratios) == 2  # the three near-1:1.58 sizes pooled (9 covers); 3:4 (4 covers); 5:3 has only 3
    assert abs(ratios[0] - 318 / 500) < 0.01 and ratios[1] == 0.75
    assert dataset_ratios(sizes, min_images=0) == ()


def test_a_datasets_own_ratio_gets_its_own_bucket():
    # 3:4 covers: no grid or cover-ratio bucket is within 1% of 3:4 at 512 px, so without the
    # dataset's ratio they would be cropped by about 4%.
    sizes = [(600, 800)] * 8
    grid_only = assign_bucket(600, 800, make_buckets(512, step=64, fine_step=8))
    assert abs((grid_only[0] / grid_only[1]) / 0.75 - 1) > 0.03
    from coverforge.data.buckets import dataset_ratios

    own = assign_bucket(600, 800, make_buckets(512, step=64, fine_step=8, ratios=dataset_ratios(sizes, 4)))
    assert abs((own[0] / own[1]) / 0.75 - 1) < 0.01 and 0.9 <= own[0] * own[1] / 512**2 <= 1


def test_cover_dataset_buckets_by_its_own_ratios():
    from coverforge.training.dataset import CoverDataset

    records = [{"width": 600, "height": 800, "path": "", "text": ""}] * 4 + [{"width": 800, "height": 450, "path": "", "text": ""}] * 2
    ds = CoverDataset(records, 512, buckets=True, step=64, fine_step=8, min_bucket_images=4)
    w, h = ds.buckets[0]
    assert abs((w / h) / 0.75 - 1) < 0.01  # 4 covers fill a batch of 4: their own bucket
    plain = CoverDataset(records, 512, buckets=True, step=64, fine_step=8)
    assert plain.buckets[0] != ds.buckets[0] and plain.buckets[4] == ds.buckets[4]  # 16:9 pair: grid as before
