"""The from-scratch recipe in latent space: a new UNet over the base folder's (frozen) VAE."""

import torch

from coverforge.config import SampleConfig, config_from_dict
from coverforge.models.loading import load_model
from coverforge.sampling.from_run import load_run_generator
from coverforge.sampling.generate import generate
from coverforge.training.loop import train


def test_scratch_in_latent_space_trains_saves_and_generates(tmp_path, tiny_models, colour_dataset):
    cfg = config_from_dict({
        "model": {"path": str(tiny_models["sd15"]), "scratch_space": "latent", "scratch_sample_size": 8,
                  "scratch_channels": [16, 32], "scratch_cross_attention_dim": 32},
        "data": {"dataset": str(colour_dataset), "resolution": 64, "buckets": False},
        "train": {"recipe": "scratch", "max_steps": 2, "batch_size": 2, "train_text_encoder": True},
    })
    run = tmp_path / "run"
    result = train(cfg, run, progress=False)
    assert result.step == 2 and all(torch.isfinite(torch.tensor(result.losses)))
    saved = load_model(str(run / "final" / "model"))
    base = load_model(str(tiny_models["sd15"]))
    assert saved.unet.config.in_channels == base.vae.config.latent_channels == 4
    # The VAE is borrowed unchanged.
    for (k, a), (_, b) in zip(saved.vae.state_dict().items(), base.vae.state_dict().items()):
        assert torch.equal(a, b), k
    gen, _ = load_run_generator(run)
    image = generate(gen, ["Book cover. Genres: red."], [0], SampleConfig(steps=2, width=64, height=64))[0]
    assert image.size == (64, 64)
