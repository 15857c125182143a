import io

import numpy as np
import pytest
from PIL import Image

from coverforge.data.images import CoverChecks, ImageRejected, check_cover, dhash, hamming, phash, pixel_sha256, to_rgb8
from data_builders import cover_array, save_cover

ANY = CoverChecks(min_size=64, orientation="any")


def test_truncated_jpeg_fails_in_preparation(tmp_path):
    path = save_cover(tmp_path / "a.jpg", 300, 450)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageRejected, match="unreadable"):
        check_cover(path, ANY)
    (tmp_path / "b.jpg").write_bytes(b"<html>not an image</html>")
    with pytest.raises(ImageRejected, match="unreadable"):
        check_cover(tmp_path / "b.jpg", ANY)


def test_cmyk_palette_and_16bit_become_rgb8(tmp_path):
    rgb = Image.fromarray(cover_array(200, 300, 1))
    rgb.convert("CMYK").save(tmp_path / "cmyk.jpg")
    rgb.convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "pal.png")
    arr16 = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    Image.fromarray(arr16).save(tmp_path / "g16.png")
    for name in ("cmyk.jpg", "pal.png"):
        c = check_cover(tmp_path / name, ANY)
        assert c.image.mode == "RGB" and c.image.size == (200, 300)
        assert np.abs(np.asarray(c.image, dtype=int) - np.asarray(rgb, dtype=int)).mean() < 12
    assert check_cover(tmp_path / "cmyk.jpg", ANY).changed
    g = check_cover(tmp_path / "g16.png", CoverChecks(min_size=64, orientation="any", grayscale_threshold=None))
    assert g.image.mode == "RGB"
    assert np.abs(np.asarray(g.image)[..., 0].astype(int) - np.asarray(rgb.convert("L"), dtype=int)).max() <= 1


def test_alpha_is_composited_on_white(tmp_path):
    arr = np.zeros((300, 200, 4), dtype=np.uint8)
    arr[..., 0] = 200
    arr[:150, :, 3] = 255  # top opaque red, bottom fully transparent
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    c = check_cover(tmp_path / "a.png", CoverChecks(min_size=64, orientation="any", grayscale_threshold=None))
    px = np.asarray(c.image)
    assert tuple(px[10, 10]) == (200, 0, 0) and tuple(px[290, 10]) == (255, 255, 255)
    la = to_rgb8(Image.new("LA", (4, 4), (0, 0)))
    assert la.mode == "RGB" and la.getpixel((0, 0)) == (255, 255, 255)


def test_exif_rotation_is_applied(tmp_path):
    img = Image.fromarray(cover_array(450, 300, 2))  # stored landscape, displayed portrait
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    img.save(tmp_path / "r.jpg", exif=exif)
    c = check_cover(tmp_path / "r.jpg", CoverChecks(min_size=64))
    assert c.image.size == (300, 450) and c.changed


def test_size_orientation_grayscale_and_bomb_filters(tmp_path):
    small = save_cover(tmp_path / "s.jpg", 100, 150)
    land = save_cover(tmp_path / "l.jpg", 450, 300)
    square = save_cover(tmp_path / "q.jpg", 300, 300)
    gray = save_cover(tmp_path / "g.jpg", 300, 450, gray=True)
    checks = CoverChecks(min_size=128)
    with pytest.raises(ImageRejected, match="too small"):
        check_cover(small, checks)
    with pytest.raises(ImageRejected, match="not portrait"):
        check_cover(land, checks)
    with pytest.raises(ImageRejected, match="not portrait"):
        check_cover(square, checks)
    assert check_cover(land, CoverChecks(min_size=128, orientation="landscape")).image.size == (450, 300)
    with pytest.raises(ImageRejected, match="grayscale"):
        check_cover(gray, checks)
    kept = check_cover(gray, CoverChecks(min_size=128, grayscale_threshold=None))
    assert kept.colourfulness < 8
    with pytest.raises(ImageRejected, match="decompression-bomb"):
        check_cover(land, CoverChecks(min_size=1, orientation="any", max_pixels=1000))


def test_hashes_find_near_duplicates_not_different_covers():
    a = Image.fromarray(cover_array(400, 600, 3))
    buf = io.BytesIO()
    a.resize((300, 450), Image.Resampling.LANCZOS).save(buf, "JPEG", quality=70)
    a2 = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    b = Image.fromarray(cover_array(400, 600, 4))
    assert hamming(phash(a), phash(a2)) <= 4 and hamming(dhash(a), dhash(a2)) <= 6
    assert hamming(phash(a), phash(b)) > 12 and hamming(dhash(a), dhash(b)) > 12
    assert pixel_sha256(a) == pixel_sha256(a.copy()) != pixel_sha256(a2)
