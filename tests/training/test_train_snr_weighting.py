"""train.snr_weighting picks the loss weights the loop applies (with train.min_snr_gamma > 0)."""

from __future__ import annotations

import pytest

from coverforge.training import loop
from coverforge.training.diffusion import SNR_WEIGHTINGS
from scratch_kit import scratch_config


def _scratch(tmp_path, dataset, **train):
    return scratch_config(tmp_path, dataset, prediction_type="sample", **train)


@pytest.mark.parametrize("weighting", ["min", "truncated"])
def test_the_loop_weights_the_loss_as_configured(tmp_path, colour_dataset, monkeypatch, weighting):
    calls = {name: [] for name in SNR_WEIGHTINGS}
    for name, weights in list(SNR_WEIGHTINGS.items()):
        def spy(scheduler, timesteps, gamma, prediction, _name=name, _weights=weights):
            calls[_name].append((gamma, prediction))
            return _weights(scheduler, timesteps, gamma, prediction)
        monkeypatch.setitem(SNR_WEIGHTINGS, name, spy)
    monkeypatch.setattr(loop, "sample_validation", lambda *a: None)
    loop.train(_scratch(tmp_path, colour_dataset, min_snr_gamma=5.0, snr_weighting=weighting), tmp_path / "run", progress=False)
    assert calls[weighting] == [(5.0, "sample")] * 2
    assert all(not v for k, v in calls.items() if k != weighting)


def test_no_gamma_no_weights(tmp_path, colour_dataset, monkeypatch):
    called = []
    monkeypatch.setitem(SNR_WEIGHTINGS, "truncated", lambda *a: called.append(a))
    monkeypatch.setattr(loop, "sample_validation", lambda *a: None)
    loop.train(_scratch(tmp_path, colour_dataset, snr_weighting="truncated"), tmp_path / "run", progress=False)
    assert not called
