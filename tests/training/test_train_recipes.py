"""Each recipe on each family: finite loss, only the intended weights move, and the saved artefact
reproduces the trained model (issue 5, "Must hold")."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from coverforge.config import SampleConfig, config_from_dict
from coverforge.models.loading import load_model
from coverforge.sampling.from_run import load_run_generator
from coverforge.sampling.generate import Generator, generate
from coverforge.training.flat_adamw import FlatAdamW
from coverforge.training import inputs, loop
from coverforge.training.recipe import apply_recipe, build_parts, make_optimizer, trained_state
from coverforge.training.scratch import build_scratch_parts
from scratch_kit import TINY_SCRATCH

PROMPTS = ['Book cover. Title: "A red book". Genres: red.', 'Book cover. Title: "A blue book". Genres: blue.']
SEEDS = [11, 12]
SAMPLE = SampleConfig(sampler="euler", steps=3, guidance_scale=5.0)

CASES = {
    "lora-sd15": ("sd15", "lora", {"train_text_encoder": True}),
    "lora-sd2": ("sd2", "lora", {"train_text_encoder": True}),
    "lora-sdxl": ("sdxl", "lora", {"train_text_encoder": True, "train_text_encoder_2": True}),
    "full-sd15": ("sd15", "full", {"train_text_encoder": True}),
    # SDXL reads text encoder 1's penultimate layer: its last layer must stay frozen (issue 17).
    "full-sdxl-te1": ("sdxl", "full", {"train_text_encoder": True}),
    "scratch": (None, "scratch", {}),
}


def make_config(family, recipe, train_extra, tiny_models, dataset, **sections):
    values = {
        "data": {"dataset": str(dataset), "resolution": 32 if recipe != "scratch" else 16, "buckets": False},
        # High rates on purpose: four steps must move the images visibly, or a broken save could pass.
        "train": {"recipe": recipe, "max_steps": 4, "batch_size": 2, "lr_unet": 1e-2, "lr_text_encoder": 1e-2,
                  "lr_text_encoder_2": 1e-2, "checkpoint_every": 1000, "log_every": 1, **train_extra},
        "lora": {"rank": 4, "alpha": 4},
    }
    if recipe == "scratch":
        values["model"] = dict(TINY_SCRATCH)
        values["train"]["lr_unet"] = 1e-3
    else:
        values["model"] = {"path": str(tiny_models[family])}
    for k, v in sections.items():
        values.setdefault(k, {}).update(v)
    return config_from_dict(values)


def train_capturing(cfg, run: Path) -> dict:
    """Run `loop.train` and keep what it trained: the model parts, the trained parts, their initial values."""
    seen: dict = {}
    real_apply, real_save = inputs.apply_recipe, loop.save_final

    def apply(parts_obj, c):
        trained = real_apply(parts_obj, c)
        seen["initial"] = {k: v.clone() for k, v in trained_state(trained).items()}
        return trained

    def save(parts_obj, trained, c, run_dir, acc):
        seen["parts"], seen["trained"] = parts_obj, trained
        return real_save(parts_obj, trained, c, run_dir, acc)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(inputs, "apply_recipe", apply)  # prepare_inputs builds the recipe
        mp.setattr(loop, "save_final", save)
        seen["result"] = loop.train(cfg, run, progress=False)
    for m in (seen["parts"].unet, seen["parts"].vae, *seen["parts"].text_encoders):
        if m is not None:
            m.eval()
    seen["cfg"], seen["run"] = cfg, run
    return seen


@pytest.fixture(scope="module", params=list(CASES))
def trained(request, tiny_models, colour_dataset, tmp_path_factory):
    family, recipe, extra = CASES[request.param]
    cfg = make_config(family, recipe, extra, tiny_models, colour_dataset)
    out = train_capturing(cfg, tmp_path_factory.mktemp(request.param) / "run")
    out["case"], out["family"] = request.param, family
    return out


def base_parts(t):
    if t["family"] is None:
        return build_scratch_parts(t["cfg"].model, "", t["cfg"].train.seed)
    return load_model(str(t["cfg"].model.path))


def images(gen: Generator) -> np.ndarray:
    return np.stack([np.asarray(im, dtype=np.int16) for im in generate(gen, PROMPTS, SEEDS, SAMPLE)])


def _plain_key(key: str) -> str:
    return key.replace(".base_layer", "")


def test_loss_is_finite_and_all_steps_ran(trained):
    result = trained["result"]
    assert result.step == 4 and len(result.losses) == 4
    assert all(np.isfinite(result.losses))


def _unread(trained, name: str) -> re.Pattern:
    """SDXL conditions on text encoder 1's penultimate layer, un-normed: its last layer and final
    norm can get no gradient. Matches nothing for every other part."""
    if trained["family"] == "sdxl" and name == "text_encoder":
        last = trained["parts"].text_encoder.config.num_hidden_layers - 1
        return re.compile(rf"(text_model\.)?(encoder\.layers\.{last}\.|final_layer_norm)")
    return re.compile(r"(?!)")


def test_only_intended_parameters_change(trained):
    parts, base = trained["parts"], base_parts(trained)
    t = trained["cfg"].train
    wanted = {"unet": t.train_unet, "text_encoder": t.train_text_encoder, "text_encoder_2": t.train_text_encoder_2}
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        module, reference = getattr(parts, name), getattr(base, name)
        if module is None:
            assert reference is None
            continue
        after, before = module.state_dict(), reference.state_dict()
        lora_keys = [k for k in after if "lora_" in k]
        base_keys = [k for k in after if "lora_" not in k]
        assert sorted(_plain_key(k) for k in base_keys) == sorted(before)
        fully_trained = t.recipe != "lora" and wanted.get(name, False)
        if fully_trained:
            unread = _unread(trained, name)
            read_keys = [k for k in base_keys if not unread.match(k)]
            changed = [k for k in read_keys if not torch.equal(after[k], before[_plain_key(k)])]
            assert len(changed) >= 0.9 * len(read_keys), f"{name}: only {len(changed)}/{len(read_keys)} tensors moved"
            # What the conditioning never reads stays frozen, bit-identical to the base (issue 17).
            kept = [k for k in base_keys if unread.match(k) and not torch.equal(after[k], before[_plain_key(k)])]
            assert kept == [], f"{name}: unread weights changed: {kept[:5]}"
        else:
            # Frozen (or LoRA-adapted) base weights stay bit-identical.
            moved = [k for k in base_keys if not torch.equal(after[k], before[_plain_key(k)])]
            assert moved == [], f"{name}: frozen weights changed: {moved[:5]}"
        if t.recipe == "lora" and wanted.get(name, False):
            assert lora_keys, f"{name} is trained but has no LoRA adapters"
        else:
            assert lora_keys == [], f"{name} got adapters it should not have"


def test_trained_parameters_moved_and_nothing_else_is_trainable(trained):
    final = trained_state(trained["trained"])
    initial = trained["initial"]
    assert set(final) == set(initial) and final
    if trained["family"] == "sdxl" and trained["cfg"].train.train_text_encoder:
        # SDXL conditions on the penultimate layer of text encoder 1: its last layer can get no
        # gradient, so it is not trained at all (no dead weight saved; DDP needs a gradient for
        # every trained tensor).
        last = trained["parts"].text_encoder.config.num_hidden_layers - 1
        pattern = re.compile(rf"text_encoder\.(text_model\.)?(encoder\.layers\.{last}\.|final_layer_norm)")
        assert not [k for k in final if pattern.match(k)]
    unchanged = [k for k in final if torch.equal(final[k], initial[k])]
    assert unchanged == [], f"trained tensors that never moved: {sorted(unchanged)[:5]}"
    if trained["cfg"].train.recipe == "lora":
        assert all("lora_" in k for k in final)
        # B starts at zero (Gaussian init): after training the adapters do something.
        assert all(final[k].abs().max() > 0 for k in final if "lora_B" in k)
    names = {t.name for t in trained["trained"]}
    expected = {"lora-sd15": {"unet", "text_encoder"}, "lora-sd2": {"unet", "text_encoder"},
                "lora-sdxl": {"unet", "text_encoder", "text_encoder_2"}, "full-sd15": {"unet", "text_encoder"},
                "full-sdxl-te1": {"unet", "text_encoder"}, "scratch": {"unet"}}[trained["case"]]
    assert names == expected


def test_saved_artefact_reproduces_the_trained_model(trained, request):
    parts, cfg, run = trained["parts"], trained["cfg"], trained["run"]
    in_memory = images(Generator.from_parts(parts, cfg.text))
    loaded_gen, loaded_cfg = load_run_generator(run)
    assert loaded_cfg == cfg
    assert np.array_equal(images(loaded_gen), in_memory)
    if cfg.train.recipe != "scratch":
        base = images(Generator.from_parts(load_model(cfg.model.path), cfg.text))
        assert np.abs(base - in_memory).mean() > 0.5, "training left the images unchanged: the comparison proves nothing"


def test_full_and_scratch_folders_hold_the_trained_weights_exactly(trained):
    if trained["cfg"].train.recipe == "lora":
        pytest.skip("LoRA runs save adapters, checked against a stock pipeline below")
    saved = load_model(str(trained["run"] / "final" / "model"))
    parts = trained["parts"]
    assert saved.family == parts.family
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        module, loaded = getattr(parts, name), getattr(saved, name)
        assert (module is None) == (loaded is None), name
        if module is None:
            continue
        a, b = module.state_dict(), loaded.state_dict()
        assert set(a) == set(b), name
        different = [k for k in a if not torch.equal(a[k], b[k])]
        assert different == [], f"{name}: saved weights differ in {different[:5]}"


def test_lora_loads_into_a_stock_diffusers_pipeline(trained):
    if trained["cfg"].train.recipe != "lora":
        pytest.skip("only LoRA runs produce a diffusers LoRA file")
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    cfg, run = trained["cfg"], trained["run"]
    cls = StableDiffusionXLPipeline if trained["family"] == "sdxl" else StableDiffusionPipeline
    pipe = cls.from_pretrained(cfg.model.path)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(run / "final" / "lora")
    stock = np.stack([
        (pipe(p, num_inference_steps=SAMPLE.steps, guidance_scale=SAMPLE.guidance_scale, height=64, width=64,
              generator=torch.Generator().manual_seed(s), output_type="np").images[0] * 255).round().astype(np.int16)
        for p, s in zip(PROMPTS, SEEDS)
    ])
    ours = images(Generator.from_parts(trained["parts"], cfg.text))
    assert stock.shape == ours.shape
    assert np.abs(stock - ours).max() <= 1, "the stock pipeline with our LoRA file draws a different image"


def test_per_part_learning_rates_reach_the_optimizer(tiny_models, colour_dataset):
    cfg = config_from_dict({
        "model": {"path": str(tiny_models["sdxl"])}, "data": {"dataset": str(colour_dataset)},
        "train": {"recipe": "lora", "train_text_encoder": True, "train_text_encoder_2": True},
        "lora": {"rank": 4, "alpha": 4},
    })
    parts_obj = build_parts(cfg)
    parts = apply_recipe(parts_obj, cfg)
    optimizer = make_optimizer(cfg.train, parts)
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert {n: g["lr"] for n, g in groups.items()} == {"unet": 1e-4, "text_encoder": 5e-5, "text_encoder_2": 1e-5}
    # LoRA's many small tensors step as one flat tensor per group; `members` are the model's own.
    assert isinstance(optimizer, FlatAdamW)
    for members, (name, group) in zip(optimizer.members, groups.items()):
        module = getattr(parts_obj, name)
        expected = {id(p) for n, p in module.named_parameters() if "lora_" in n}
        assert {id(p) for p in members} == expected and expected
        assert group["params"][0].numel() == sum(p.numel() for p in members)
    assert optimizer.defaults["betas"] == (0.9, 0.999) and optimizer.defaults["weight_decay"] == 1e-2
    assert optimizer.defaults["eps"] == 1e-8
    assert optimizer.defaults["fused"] is True  # one kernel for all tensors, not a Python loop over them
    # Nothing outside the adapters is trainable.
    for module in (parts_obj.unet, parts_obj.vae, *parts_obj.text_encoders):
        assert all("lora_" in n for n, p in module.named_parameters() if p.requires_grad)


def test_logged_learning_rates_are_the_per_part_rates(trained):
    import json

    rows = [json.loads(line) for line in (trained["run"] / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    t = trained["cfg"].train
    rates = {"unet": t.lr_unet, "text_encoder": t.lr_text_encoder, "text_encoder_2": t.lr_text_encoder_2}
    for part in trained["trained"]:
        assert rows[-1][f"lr/{part.name}"] == pytest.approx(rates[part.name])
    assert [r["loss"] for r in rows] == pytest.approx(trained["result"].losses)


def test_scratch_sampler_config_is_the_same_in_memory_and_saved(tmp_path):
    from coverforge.config import ModelConfig
    from coverforge.models.saving import save_model_folder
    from coverforge.sampling.generate import make_sampler

    parts = build_scratch_parts(ModelConfig(scratch_channels=[16, 32], scratch_sample_size=16), "", 0)
    saved = load_model(str(save_model_folder(parts, tmp_path / "model")))
    def public(config):
        return {k: v for k, v in config.items() if not k.startswith("_")}

    in_memory = public(make_sampler("euler", parts.scheduler_config).config)
    from_disk = public(make_sampler("euler", saved.scheduler_config).config)
    assert in_memory == from_disk  # today timestep_spacing is 'linspace' in memory, 'leading' from disk


def test_adamw_falls_back_to_the_loop_where_the_fused_kernel_is_missing(monkeypatch):
    from coverforge.config import TrainConfig
    from coverforge.training.recipe import TrainedPart

    real = torch.optim.AdamW.__init__

    def no_fused(self, params, **kw):
        if kw.get("fused"):
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")
        real(self, params, **kw)

    monkeypatch.setattr(torch.optim.AdamW, "__init__", no_fused)  # FlatAdamW's too: it is torch's AdamW underneath
    layer = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(TrainConfig(), [TrainedPart("unet", layer, 1e-3)])
    assert isinstance(optimizer, FlatAdamW) and optimizer.members[0] == list(layer.parameters())
    layer(torch.ones(1, 2)).sum().backward()
    before = layer.weight.detach().clone()
    optimizer.step()  # the fallback's views are the ones linked: the step sees the gradient
    assert not torch.equal(layer.weight, before)
    assert not optimizer.defaults["fused"]


def test_several_processes_step_per_tensor():
    """Under DDP the reducer owns the gradients' storage: FlatAdamW stays out of it (FlatAdamW still
    recovers a re-pointed gradient, tests/training/test_flat_adamw.py, but would copy it every step)."""
    from coverforge.config import TrainConfig
    from coverforge.training.recipe import TrainedPart

    layer = torch.nn.Linear(2, 2)
    assert isinstance(make_optimizer(TrainConfig(), [TrainedPart("unet", layer, 1e-3)]), FlatAdamW)
    assert type(make_optimizer(TrainConfig(), [TrainedPart("unet", layer, 1e-3)], processes=2)) is torch.optim.AdamW
