"""What a training step holds in memory, for any trainer that runs torch: coverforge or a diffusers example.

    python benchmarks/profile_memory.py --out mem.json --step 3 -- -m coverforge train CONFIG --out RUN
    PYTHONPATH=../shared/peers/tvshim ../peer-venv/bin/python benchmarks/profile_memory.py --out peer.json -- \\
        ../shared/peers/train_text_to_image_lora_sdxl.py --pretrained_model_name_or_path ...

Two trainers doing the same maths can still hold different bytes: a part left on the device, a
weight kept in another dtype, an extra copy, activations saved in another precision. At the --step-th
call of Tensor.backward (both trainers' backward goes through it), just before it runs, this records
per device: every tensor Python can reach (parameters by dtype, trained or frozen; other tensors:
batches, caches, optimizer state), the tensors autograd saved for that backward (one global
saved-tensors hook, unique storages, split into parameters and the rest: activations and autocast's
weight copies), and on CUDA the allocator's figures. Then it writes --out and ends the process.
Only standard-library imports at the top: it runs in the peer's venv too. The hook keeps a reference
to nothing; it records storage pointers and sizes.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trainer_in_process import add_target_argument, run_trainer, target_of  # noqa: E402

MIB = 2**20


def storage_key(t) -> tuple:
    s = t.untyped_storage()
    return (str(t.device), s.data_ptr(), s.nbytes())


def reachable_tensors() -> tuple[dict, set]:
    """{device: {category: MiB}} over unique storages of every tensor gc reaches, and the parameters' storage keys.
    Parameters are found first: a storage that a parameter shares with a plain tensor (a flat optimizer
    buffer, a loaded file) counts as the parameter's."""
    import torch

    tensors = []
    for obj in gc.get_objects():
        try:
            if torch.is_tensor(obj) and not obj.is_meta:
                tensors.append((storage_key(obj), obj))
        except Exception:  # noqa: BLE001 -- wrapped or freed objects gc still lists
            continue
    params = {key: t for key, t in tensors if isinstance(t, torch.nn.Parameter)}
    seen, out = set(), defaultdict(lambda: defaultdict(float))
    for key, t in [*params.items(), *tensors]:
        if key in seen:
            continue
        seen.add(key)
        dtype = str(t.dtype).removeprefix("torch.")
        category = f"parameters {'trained' if t.requires_grad else 'frozen'} {dtype}" if key in params else f"other tensors {dtype}"
        out[key[0]][category] += key[2] / MIB
    return out, set(params)


def _rounded(by_device: dict) -> dict:
    """{device: {category: MiB}} to 0.1 MiB."""
    return {device: {c: round(v, 1) for c, v in categories.items()} for device, categories in by_device.items()}


class Recorder:
    def __init__(self, step: int, out: str):
        self.step, self.out, self.calls, self.saved = step, out, 0, {}

    def pack(self, t):
        try:
            self.saved[storage_key(t)] = (str(t.dtype).removeprefix("torch."), tuple(t.shape))
        except Exception:  # noqa: BLE001 -- tensors without a storage (e.g. nested)
            pass
        return t

    def backward(self, original):
        def wrapped(tensor, *args, **kwargs):
            self.calls += 1
            if self.calls == self.step:
                self.write()
                os._exit(0)
            self.saved = {}  # what the next forward saves
            return original(tensor, *args, **kwargs)

        return wrapped

    def write(self) -> None:
        import torch

        tensors, params = reachable_tensors()
        saved, shapes = defaultdict(lambda: defaultdict(float)), defaultdict(lambda: [0, 0.0])
        for (device, ptr, nbytes), (dtype, shape) in self.saved.items():
            kind = "parameters" if (device, ptr, nbytes) in params else "activations and weight copies"
            saved[device][f"{kind} {dtype}"] += nbytes / MIB
            if kind != "parameters":
                entry = shapes[f"{dtype} {list(shape)}"]
                entry[0] += 1
                entry[1] += nbytes / MIB
        report = {"step": self.step, "reachable_mib": _rounded(tensors), "saved_for_backward_mib": _rounded(saved),
                  "saved_by_shape": {k: [n, round(mib, 2)] for k, (n, mib) in sorted(shapes.items(), key=lambda kv: -kv[1][1])}}
        if torch.cuda.is_available():
            report["cuda_mib"] = {"allocated": torch.cuda.memory_allocated() / MIB, "max_allocated": torch.cuda.max_memory_allocated() / MIB,
                                  "reserved": torch.cuda.memory_reserved() / MIB, "max_reserved": torch.cuda.max_memory_reserved() / MIB}
        with open(self.out, "w") as f:
            json.dump(report, f, indent=1)
        print(f"profile_memory: wrote {self.out}", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSON of what the step holds")
    ap.add_argument("--step", type=int, default=3, help="record before this call of Tensor.backward (later ones hold steady state)")
    add_target_argument(ap)
    args = ap.parse_args()
    target = target_of(ap, args)
    import torch

    recorder = Recorder(args.step, args.out)
    torch.Tensor.backward = recorder.backward(torch.Tensor.backward)
    torch.autograd.graph.saved_tensors_hooks(recorder.pack, lambda t: t).__enter__()  # for the whole process
    run_trainer(target)
    print("profile_memory: the run ended before the step", file=sys.stderr)


if __name__ == "__main__":
    main()
