"""The denoiser's training forward (a UNet, or a flow transformer) replayed from TorchScript traces
(`run.trace_unet`).

A small denoiser's step is mostly Python: each of its few hundred module calls and tensor ops goes
through `nn.Module.__call__`, diffusers' and peft's argument handling and the dispatcher's Python
binding, and the kernels themselves are short. A trace records the ops one forward makes and replays
them from C++: the same kernels, in the same order, on the same (shared) parameters, with autograd
recording as usual, so the loss and gradients are bit for bit eager's (tests/training/test_traced_unet.py).
On one CPU thread a training step is 1.23x as fast on the tiny SD 1.5, 1.19x on the small SDXL,
1.39x on the tiny Qwen-Image and 1.29x on the tiny Z-Image (a fixed batch;
benchmarks/bench_trace_unet.py); the demo's from-scratch UNet, whose step is kernel time, 1.02x.

What a trace cannot see it bakes in: Python branches on shapes (diffusers checks the upsampling size
and the batch size), on flags, and on values read back to Python (Qwen-Image passes no text mask when
every token counts; Z-Image cuts each prompt to its own length in Python). So there is one trace per
signature: the tensors' shapes, dtypes and devices plus what the call branches on (`branch`: which
SDXL conditions are given, `FlowModel.trace_branch`). Qwen-Image's text length is a shape, so its
prompts are padded to a multiple of 16 tokens (`FlowModel.text_multiple`, traced or not): a 64-cover
run has 3 text lengths instead of 25, and 3 traces of about 5 MB each. A signature is traced the
second time it comes, so one that never recurs (Z-Image's pattern of prompt lengths in a batch of
varied prompts) costs no trace, and at most MAX_TRACES are kept. `switches.training_forward` only
uses traces where nothing else varies between calls: one process (DDP's forward does bookkeeping a trace would skip), no
gradient checkpointing (it reruns Python in the backward pass), no autocast and no torch.compile.
`auto` traces on the CPU, where it is measured; `on` also on a GPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable

import torch

from coverforge.models.flow_model import pad_text

MAX_TRACES = 16
"""Traces kept per model (each holds its graph: 10-90 MB on the benchmarks' models); later signatures run eagerly."""


class TracedCall:
    """`call(branch, *tensors)` -> a tensor, replayed from a trace per signature once it recurs."""

    def __init__(self, module: torch.nn.Module, call: Callable[..., torch.Tensor], trace: bool = True):
        self.module, self.call, self.trace = module, call, trace
        self.traces: dict[tuple, tuple] = {}
        self.seen: set[int] = set()

    def __call__(self, branch: Hashable, *tensors: torch.Tensor) -> torch.Tensor:
        if not self.trace:
            return self.call(branch, *tensors)
        key = (branch, *((x.shape, x.dtype, x.device) for x in tensors))
        found = self.traces.get(key)
        if found is None:
            if hash(key) not in self.seen or len(self.traces) >= MAX_TRACES:
                if len(self.seen) > 100_000:  # a run whose signatures never recur: keep the set small
                    self.seen.clear()
                self.seen.add(hash(key))
                return self.call(branch, *tensors)
            found = self.traces[key] = self._trace(branch, tensors)
        trace, trained = found
        # Unoptimised execution runs the recorded ops as they are: the profiling executor would
        # differentiate them itself (other kernels, more memory) instead of using autograd.
        with torch.jit.optimized_execution(False):
            return trace(*tensors, *trained)

    def _trace(self, branch: Hashable, tensors: tuple) -> tuple:
        """A trace of a function, not of the module: a traced module mirrors every submodule as a
        ScriptModule (tiny SD 1.5, 400 steps: 35 MB of peak RSS against 19, and 147 images/s against
        164). The trained tensors are the function's inputs, so each replay's autograd reaches them;
        the frozen ones are the trace's constants, the same tensors, not copies."""
        trained = tuple(p for p in self.module.parameters() if p.requires_grad)
        n = len(tensors)

        def forward(*inputs):
            return self.call(branch, *inputs[:n])

        # Recorded without autograd (nothing is kept from the tracing pass); each replay records it.
        with torch.no_grad(), warnings.catch_warnings():
            # The shape branches these warn about are why each signature gets its own trace.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # torch.jit.trace's own steps, but the function goes into a compilation unit of its own:
            # torch.jit.trace files every traced function in torch's global one, where it (and the
            # frozen weights it holds as constants) would outlive the run and every later run in
            # the process.
            graph, _ = torch._C._create_graph_by_tracing(forward, [*tensors, *trained], lambda _: "", True, False)
            trace = torch._C.CompilationUnit().create_function("forward", graph)
        # A trace's memory grows with its nodes (5-8 KB each; not their recorded Python stacks:
        # stripping those saved nothing), and over half of them are constants: the same integers,
        # None and frozen tensors recorded at every use. Pooling equal constants into one node each
        # (frozen tensors of equal values too: nothing writes them while training, so equal values
        # give equal results) halves the nodes; the small SDXL's trace holds 93 MB instead of 156
        # (benchmarks/RESULTS.md).
        torch._C._jit_pass_constant_pooling(trace.graph)
        torch._C._jit_pass_dce(trace.graph)
        return trace, trained


class UNetForward:
    """`(sample, timestep, hidden, added)` -> a UNet's prediction, traced or not."""

    def __init__(self, unet: torch.nn.Module, trace: bool = False):
        self.unet = unet
        self.calls = TracedCall(unet, self._predict, trace)

    def _predict(self, names, sample, timestep, hidden, *conditions):
        added = dict(zip(names, conditions)) if names else None
        return self.unet(sample, timestep, encoder_hidden_states=hidden, added_cond_kwargs=added, return_dict=False)[0]

    def __call__(self, sample, timestep, hidden, added: dict | None = None) -> torch.Tensor:
        names = tuple(sorted(added)) if added else ()  # which SDXL conditions: a branch, not data
        return self.calls(names, sample, timestep, hidden, *(added[n] for n in names))


class FlowForward:
    """`(noisy, sigmas, hidden, mask)` -> a flow transformer's velocity (`FlowModel.predict`), traced or not."""

    def __init__(self, transformer: torch.nn.Module, flow, trace: bool = False):
        self.transformer, self.flow = transformer, flow
        self.calls = TracedCall(transformer, self._predict, trace)

    def _predict(self, _branch, noisy, sigmas, hidden, mask):
        return self.flow.predict(self.transformer, noisy, sigmas, hidden, mask)

    def __call__(self, noisy, sigmas, hidden, mask) -> torch.Tensor:
        hidden, mask = pad_text(hidden, mask, self.flow.text_multiple)  # traced or not: the same computation
        branch = self.flow.trace_branch(mask) if self.calls.trace else None
        return self.calls(branch, noisy, sigmas, hidden, mask)
