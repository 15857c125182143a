"""The UNet's training forward replayed from a TorchScript trace (`run.trace_unet`).

A small UNet's step is mostly Python: each of its few hundred module calls and tensor ops goes
through `nn.Module.__call__`, diffusers' and peft's argument handling and the dispatcher's Python
binding, and the kernels themselves are short. A trace records the ops one forward makes and replays
them from C++: the same kernels, in the same order, on the same (shared) parameters, with autograd
recording as usual, so the loss and gradients are bit for bit eager's (tests/training/test_traced_unet.py).
On one CPU thread a training step is 1.23x as fast on the tiny SD 1.5 and 1.19x on the small SDXL
(benchmarks/bench_trace_unet.py); the demo's from-scratch UNet, whose step is kernel time, 1.02x.

What a trace cannot see it bakes in: Python branches on shapes (diffusers checks the upsampling size
and the batch size) and on flags. So there is one trace per input signature (shapes, dtypes,
devices, which SDXL conditions are given), made on first use, and `switches.training_forward` only
uses traces where nothing else varies between calls: one process (DDP's forward does bookkeeping a
trace would skip), no gradient checkpointing (it reruns Python in the backward pass), no autocast
and no torch.compile. `auto` traces on the CPU, where it is measured; `on` also on a GPU.
"""

from __future__ import annotations

import warnings

import torch


class TracedUNet:
    """`unet(sample, timestep, hidden, added)` -> the prediction, from a trace per input signature."""

    def __init__(self, unet: torch.nn.Module):
        self.unet = unet
        self.traces: dict[tuple, tuple] = {}

    def __call__(self, sample: torch.Tensor, timestep: torch.Tensor, hidden: torch.Tensor, added: dict | None = None) -> torch.Tensor:
        names = tuple(sorted(added)) if added else ()
        inputs = (sample, timestep, hidden, *(added[n] for n in names))
        key = (names, *((x.shape, x.dtype, x.device) for x in inputs))
        if key not in self.traces:
            self.traces[key] = self._trace(names, inputs)
        trace, trained = self.traces[key]
        # Unoptimised execution runs the recorded ops as they are: the profiling executor would
        # differentiate them itself (other kernels, more memory) instead of using autograd.
        with torch.jit.optimized_execution(False):
            return trace(*inputs, *trained)

    def _trace(self, names: tuple[str, ...], inputs: tuple) -> tuple:
        """A trace of a function, not of the module: a traced module mirrors every submodule as a
        ScriptModule (tiny SD 1.5, 400 steps: 35 MB of peak RSS against 19, and 147 images/s against
        164). The trained tensors are the function's inputs,
        so each replay's autograd reaches them; the frozen ones are the trace's constants, the
        same tensors, not copies."""
        unet = self.unet
        trained = tuple(p for p in unet.parameters() if p.requires_grad)

        def forward(sample, timestep, hidden, *rest):
            conditions = dict(zip(names, rest[: len(names)])) if names else None
            return unet(sample, timestep, encoder_hidden_states=hidden, added_cond_kwargs=conditions, return_dict=False)[0]

        # Recorded without autograd (nothing is kept from the tracing pass); each replay records it.
        with torch.no_grad(), warnings.catch_warnings():
            # The shape branches these warn about are why each signature gets its own trace.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # torch.jit.trace's own steps, but the function goes into a compilation unit of its own:
            # torch.jit.trace files every traced function in torch's global one, where it (and the
            # frozen weights it holds as constants) would outlive the run and every later run in
            # the process.
            graph, _ = torch._C._create_graph_by_tracing(forward, [*inputs, *trained], lambda _: "", True, False)
            trace = torch._C.CompilationUnit().create_function("forward", graph)
        # Each node of a trace keeps the Python call stack it was recorded from (about 7 KB), and
        # over half of them are constants: the same integers, None and frozen tensors recorded at
        # every use. Pooling equal constants into one node each (frozen tensors of equal values
        # too: nothing writes them while training, so equal values give equal results) halves the
        # nodes; the small SDXL's trace holds 93 MB instead of 156 (benchmarks/RESULTS.md).
        torch._C._jit_pass_constant_pooling(trace.graph)
        torch._C._jit_pass_dce(trace.graph)
        return trace, trained


def eager_forward(unet: torch.nn.Module):
    """The same call without a trace."""

    def forward(sample, timestep, hidden, added=None):
        return unet(sample, timestep, encoder_hidden_states=hidden, added_cond_kwargs=added, return_dict=False)[0]

    return forward
