"""AdamW that steps each parameter group as one flat tensor: for LoRA's many small tensors.

A LoRA on SDXL's attention is about 1,100 A and B matrices of a few thousand numbers each, and
torch pays a fixed cost per tensor in AdamW (fused or not) and in clip_grad_norm_: 14 ms of the
small benchmark SDXL's 490 ms step on one CPU thread, where one flat tensor costs under 1 ms
(benchmarks/RESULTS.md, issue #18). So here:

- the trained tensors' gradients are views of one buffer per group, which autograd accumulates
  into in place, so clipping reads one tensor (`flat_tensors`: what the loop clips);
- each step gathers the weights into a flat copy, updates it with one fused AdamW call and writes
  it back with one foreach copy.

The model's tensors keep their own storage and stay the weights of record: savers (safetensors
refuses tensors that share memory), EMA, checkpoints and `load_trained_state` see what they saw
before, and the flat copy is refreshed from them at every step, so it is never stale.
"""

from __future__ import annotations

import torch

FLAT_MAX_NUMEL = 1 << 26
"""Largest group (64M numbers, 256 MB in fp32) stepped flat. Past it the per-tensor cost is noise
beside the update itself and the flat copy would cost memory: a full fine-tune steps per tensor."""


def can_flatten(groups: list[dict]) -> bool:
    """Every group's tensors share a device and a dtype, and none is too large to copy."""
    for group in groups:
        params = group["params"]
        if not params or sum(p.numel() for p in params) > FLAT_MAX_NUMEL:
            return False
        if len({(p.device, p.dtype) for p in params}) != 1:
            return False
    return True


class FlatAdamW(torch.optim.AdamW):
    """torch.optim.AdamW over one flat tensor per group; the model's tensors are `members`.

    The optimizer state (and a checkpoint of it) holds one tensor per group; a per-tensor state
    from torch's AdamW over the same groups, in the same order, is converted on load."""

    def __init__(self, groups: list[dict], fused: bool | None = None, **settings):
        self.members: list[list[torch.nn.Parameter]] = []
        self._grads: list[list[torch.Tensor]] = []  # per member, its view of the group's flat gradient
        flat_groups = []
        for group in groups:
            members = list(group["params"])
            flat = torch.nn.Parameter(torch.cat([p.detach().reshape(-1) for p in members]))
            flat.grad = torch.zeros_like(flat)
            self.members.append(members)
            self._grads.append(_views(flat.grad, members))
            flat_groups.append({**group, "params": [flat]})
        super().__init__(flat_groups, fused=fused, **settings)
        self._weights = [_views(g["params"][0].data, m) for g, m in zip(self.param_groups, self.members)]
        # Where each member's gradient lies in its group's flat gradient, in bytes from its start.
        self._offsets = [[v.data_ptr() - views[0].data_ptr() for v in views] for views in self._grads]
        for i in range(len(self.members)):
            self._link(i)

    @property
    def flat_tensors(self) -> list[torch.nn.Parameter]:
        """One tensor per group whose .grad is every member's gradient: what clipping reads."""
        for i in range(len(self.members)):
            self._relink_if_replaced(i)
        return [g["params"][0] for g in self.param_groups]

    def _link(self, i: int) -> None:
        for p, view in zip(self.members[i], self._grads[i]):
            p.grad = view

    def _relink_if_replaced(self, i: int) -> None:
        """A member's .grad that is no longer its view of the flat gradient (set to None, moved with
        its module by `.to()`, or re-pointed at another buffer as DDP's reducer does) is copied into
        the flat gradient and linked again, so no gradient is lost and none is stepped twice."""
        members, views = self.members[i], self._grads[i]
        flat = self.param_groups[i]["params"][0].grad
        base = flat.data_ptr()
        if all(p.grad is v and v.data_ptr() == base + offset for p, v, offset in zip(members, views, self._offsets[i])):
            return
        fresh = _views(flat, members)
        with torch.no_grad():
            for p, view in zip(members, fresh):
                if p.grad is None:
                    view.zero_()
                elif p.grad.data_ptr() != view.data_ptr():
                    view.copy_(p.grad)
        self._grads[i] = fresh
        self._link(i)

    @torch.no_grad()
    def step(self, closure=None):
        for i, (group, members) in enumerate(zip(self.param_groups, self.members)):
            self._relink_if_replaced(i)
            torch.cat([p.reshape(-1) for p in members], out=group["params"][0].data)
        loss = super().step(closure)
        for members, weights in zip(self.members, self._weights):
            torch._foreach_copy_(members, weights)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zeroes the flat gradients in place (never None: the members' gradients are views of them)."""
        for i in range(len(self.members)):
            self._relink_if_replaced(i)
            self.param_groups[i]["params"][0].grad.zero_()

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(_flat_state(state_dict, self.members))


def _views(flat: torch.Tensor, members: list[torch.Tensor]) -> list[torch.Tensor]:
    return [v.view_as(p) for v, p in zip(flat.split([p.numel() for p in members]), members)]


def _flat_state(state_dict: dict, members: list[list[torch.Tensor]]) -> dict:
    """A per-tensor AdamW state over the same groups -> one flat tensor per group (a flat state
    passes through). Tensors the saved optimizer never stepped start from zero moments."""
    groups = state_dict["param_groups"]
    if all(len(g["params"]) == 1 for g in groups) or len(groups) != len(members):
        return state_dict
    state, flat_state, flat_groups = state_dict["state"], {}, []
    for i, (group, params) in enumerate(zip(groups, members)):
        if len(group["params"]) != len(params):
            return state_dict  # not the same groups: torch's own check names the mismatch
        saved = [state.get(k, {}) for k in group["params"]]
        entry = {}
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            if any(key in s for s in saved):
                entry[key] = torch.cat([s[key].reshape(-1) if key in s else torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
                                        for s, p in zip(saved, params)])
        steps = [s["step"] for s in saved if "step" in s]
        if steps:
            entry["step"] = max(steps, key=float)
            flat_state[i] = entry
        flat_groups.append({**group, "params": [i]})
    return {"state": flat_state, "param_groups": flat_groups}
