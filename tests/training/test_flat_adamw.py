"""FlatAdamW steps the same weights as torch's AdamW over the same tensors, with clipping, two
groups, a resumed per-tensor state, and gradients someone replaced or re-pointed behind its back."""

import copy

import pytest
import torch

from coverforge.training import flat_adamw
from coverforge.training.flat_adamw import FlatAdamW, can_flatten


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    model[2].weight.requires_grad_(False)  # a frozen tensor in the middle, as a LoRA's base weights
    return model


def _groups(model) -> list[dict]:
    trained = [p for p in model.parameters() if p.requires_grad]
    return [{"params": trained[:2], "lr": 1e-2, "name": "a"}, {"params": trained[2:], "lr": 3e-2, "name": "b"}]


SETTINGS = dict(betas=(0.9, 0.99), weight_decay=0.01, eps=1e-8)


def _step(model, optimizer, clipped, k: int, max_norm: float = 0.05) -> float:
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(k))
    loss = model(x).pow(2).mean() * (k + 1)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(clipped(), max_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(norm)


def _trained(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters() if p.requires_grad]


@pytest.mark.parametrize("fused", [True, None])
def test_same_weights_as_torch_adamw(fused):
    ref_model, flat_model = _model(), _model()
    ref = torch.optim.AdamW(_groups(ref_model), fused=fused, **SETTINGS)
    flat = FlatAdamW(_groups(flat_model), fused=fused, **SETTINGS)
    ref_params = [p for p in ref_model.parameters() if p.requires_grad]
    for k in range(6):  # the clip is active: the norms are far above 0.05
        n_ref = _step(ref_model, ref, lambda: ref_params, k)
        n_flat = _step(flat_model, flat, lambda: flat.flat_tensors, k)
        assert n_flat == pytest.approx(n_ref, rel=1e-5)
    for a, b in zip(_trained(ref_model), _trained(flat_model)):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    assert not torch.equal(_trained(flat_model)[0], _trained(_model())[0])  # it did train
    assert torch.equal(flat_model[2].weight, _model()[2].weight)  # the frozen tensor did not
    # The model's tensors keep their own storage: safetensors refuses tensors that share memory.
    ptrs = {p.untyped_storage().data_ptr() for p in flat_model.parameters()}
    assert len(ptrs) == len(list(flat_model.parameters()))


def test_weights_written_outside_a_step_are_not_overwritten():
    """load_trained_state and EMA's copy_to write the model's tensors: the next step starts from them."""
    ref_model, flat_model = _model(), _model()
    ref = torch.optim.AdamW(_groups(ref_model), **SETTINGS)
    flat = FlatAdamW(_groups(flat_model), **SETTINGS)
    _step(ref_model, ref, lambda: [], 0, max_norm=1e9)
    _step(flat_model, flat, lambda: [], 0, max_norm=1e9)
    with torch.no_grad():
        for model in (ref_model, flat_model):
            model[0].weight.mul_(0.5)
    _step(ref_model, ref, lambda: [], 1, max_norm=1e9)
    _step(flat_model, flat, lambda: [], 1, max_norm=1e9)
    for a, b in zip(_trained(ref_model), _trained(flat_model)):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_gradients_set_to_none_by_someone_else_are_not_lost():
    ref_model, flat_model = _model(), _model()
    ref = torch.optim.AdamW(_groups(ref_model), **SETTINGS)
    flat = FlatAdamW(_groups(flat_model), **SETTINGS)
    for model in (ref_model, flat_model):
        model.zero_grad(set_to_none=True)  # drops FlatAdamW's views: backward makes fresh tensors
    ref_params = [p for p in ref_model.parameters() if p.requires_grad]
    n_ref = _step(ref_model, ref, lambda: ref_params, 0)
    n_flat = _step(flat_model, flat, lambda: flat.flat_tensors, 0)
    assert n_flat == pytest.approx(n_ref, rel=1e-5)
    for a, b in zip(_trained(ref_model), _trained(flat_model)):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_gradients_re_pointed_at_another_buffer_are_not_lost():
    """DDP's reducer (under Accelerate) re-points the gradient tensors it is handed at its own
    buffers: same Python objects, other storage. Backward then fills that storage, not the flat
    gradient; before this was checked, clipping read zeros and the step trained nothing."""
    ref_model, flat_model = _model(), _model()
    ref = torch.optim.AdamW(_groups(ref_model), **SETTINGS)
    flat = FlatAdamW(_groups(flat_model), **SETTINGS)
    for p in flat_model.parameters():
        if p.grad is not None:
            p.grad.data = torch.zeros_like(p.grad)  # the object stays, its storage is another buffer
    ref_params = [p for p in ref_model.parameters() if p.requires_grad]
    for k in range(2):
        n_ref = _step(ref_model, ref, lambda: ref_params, k)
        n_flat = _step(flat_model, flat, lambda: flat.flat_tensors, k)
        assert n_flat == pytest.approx(n_ref, rel=1e-5)
    for a, b in zip(_trained(ref_model), _trained(flat_model)):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_resumes_from_a_per_tensor_state_and_round_trips_its_own():
    """A checkpoint written by torch's AdamW over the same groups (before FlatAdamW) resumes."""
    ref_model = _model()
    ref = torch.optim.AdamW(_groups(ref_model), **SETTINGS)
    for k in range(3):
        _step(ref_model, ref, lambda: [], k, max_norm=1e9)
    flat_model = copy.deepcopy(ref_model)
    flat = FlatAdamW(_groups(flat_model), **SETTINGS)
    flat.load_state_dict(copy.deepcopy(ref.state_dict()))
    again = FlatAdamW(_groups(copy.deepcopy(flat_model)), **SETTINGS)
    again.load_state_dict(copy.deepcopy(flat.state_dict()))  # its own flat state passes through
    for k in range(3, 5):
        _step(ref_model, ref, lambda: [], k, max_norm=1e9)
        _step(flat_model, flat, lambda: [], k, max_norm=1e9)
    for a, b in zip(_trained(ref_model), _trained(flat_model)):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    assert float(again.state[again.param_groups[0]["params"][0]]["step"]) == 3
    assert [g["lr"] for g in again.param_groups] == [1e-2, 3e-2]


def test_which_groups_are_flattened(monkeypatch):
    model = _model()
    assert can_flatten(_groups(model))
    mixed = _groups(model)
    mixed[1]["params"] = [mixed[1]["params"][0], torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))]
    assert not can_flatten(mixed)  # one flat tensor holds one dtype
    monkeypatch.setattr(flat_adamw, "FLAT_MAX_NUMEL", 20)
    assert not can_flatten(_groups(model))  # a full fine-tune's groups step per tensor
