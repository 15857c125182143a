import numpy as np
import pytest
import torch
from PIL import Image

from coverforge.errors import CoverforgeError
from coverforge.evaluation.features import extract_features, get_extractor, inception_extractor, module_extractor
from coverforge.evaluation.inception_fid import FIDInceptionV3, resize_like_tensorflow1x


def test_tf1_resize_samples_without_half_pixel_offset():
    x = torch.arange(2 * 3 * 8 * 6, dtype=torch.float32).reshape(2, 3, 8, 6)
    torch.testing.assert_close(resize_like_tensorflow1x(x, 4)[..., :, :], resize_like_tensorflow1x(x, 4))
    halved = resize_like_tensorflow1x(torch.arange(64.0).reshape(1, 1, 8, 8), 4)
    torch.testing.assert_close(halved, torch.arange(64.0).reshape(1, 1, 8, 8)[..., ::2, ::2])
    same = torch.rand(1, 3, 299, 299)
    assert resize_like_tensorflow1x(same, 299) is same


def test_inception_loads_a_weights_file_and_reports_identity(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(FIDInceptionV3().state_dict(), path)
    ext = inception_extractor(path)
    assert ext.identity.startswith("inception:tf-2015-12-05")
    feats = extract_features([Image.new("RGB", (60, 90), "red"), Image.new("RGB", (30, 30), "blue")], ext, batch_size=2)
    assert feats.shape == (2, 2048) and torch.isfinite(feats).all()
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(3)}, bad)
    with pytest.raises(CoverforgeError, match="not an FID Inception"):
        inception_extractor(bad)


def test_missing_inception_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("COVERFORGE_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(CoverforgeError, match="weights-inception-2015-12-05-6726825d.pth.*--weights"):
        get_extractor("inception")
    with pytest.raises(CoverforgeError, match="unknown feature extractor"):
        get_extractor("dino")


def test_module_extractor_identity_tracks_weights(cnn_factory):
    a, b = module_extractor(cnn_factory(0)), module_extractor(cnn_factory(1))
    assert a.identity != b.identity and module_extractor(cnn_factory(0)).identity == a.identity
    images = [Image.fromarray(np.full((20, 10, 3), i * 20, np.uint8)) for i in range(5)]
    torch.testing.assert_close(extract_features(images, a, 2), extract_features(images, a, 5))
