"""Optional packages that libraries import just because they are installed, deferred until used.

bitsandbytes costs about 45 MB of peak memory and 1-2.5 s on every coverforge command that loads a
model (it imports torch._dynamo; measured on the tiny SD 1.5 LoRA run of benchmarks/bench_peer.py:
peak 563 MB with it, 518 MB without), for the int8 / nf4 layers and the 8-bit optimizer that only
`model.quantize_*` and `train.optimizer = "adamw8bit"` use. Two libraries import it regardless:
- diffusers binds it when any model class is imported (its quantizer module). A stand-in in
  `sys.modules` holds the package's place; the first name anyone reads from it imports the real one.
- peft's LoRA dispatch checks for bitsandbytes layers by importing it. `lora_dispatch_without_bnb`
  hides it while an adapter attaches to a model that cannot hold such layers.

Not `importlib.util.LazyLoader`: `inspect.getmodule` (called when torch registers an operator)
reads `__file__` of every module in `sys.modules`, which makes a LazyLoader module load mid-import.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types

DEFERRED = ("bitsandbytes",)


class _StandIn(types.ModuleType):
    """Answers `__name__`, `__file__` and `__spec__` itself; any other name imports the real package."""

    def __getattr__(self, name: str):
        if name in sys.modules:
            # A top-level module's name (torch, os): pickle's whichmodule() asks every module in
            # sys.modules for an object's qualified name, as torch.compile's cache keys do; the package
            # would only re-export it, so answering no is true and keeps the import deferred.
            raise AttributeError(name)
        return getattr(_import_real(self), name)


def _import_real(stand_in: _StandIn) -> types.ModuleType:
    if sys.modules.get(stand_in.__name__) is stand_in:
        del sys.modules[stand_in.__name__]
    real = importlib.import_module(stand_in.__name__)
    # Modules that bound the stand-in (`import bitsandbytes as bnb` at import time) now see every name.
    stand_in.__dict__.update(real.__dict__)
    return real


def defer(name: str) -> None:
    """Put a stand-in for `name` in `sys.modules` unless it is already imported or not installed."""
    if name in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return
    if spec is None:
        return
    stand_in = _StandIn(name)
    # find_spec() on an imported name returns its __spec__ (peft asks it whether bitsandbytes is there).
    # No __path__: importing a submodule reads it, and so imports the real package first.
    stand_in.__spec__ = spec
    stand_in.__file__ = spec.origin
    sys.modules[name] = stand_in


def is_deferred(name: str) -> bool:
    """True while `name` is still the stand-in (nothing has read a name from it yet: the first
    read puts the real package in `sys.modules`)."""
    return isinstance(sys.modules.get(name), _StandIn)


@contextlib.contextmanager
def lora_dispatch_without_bnb():
    """Attach peft adapters without importing bitsandbytes when it is still deferred: then no module
    anywhere is one of its layers, so peft's bitsandbytes dispatchers could match nothing. peft asks
    `importlib.util.find_spec`, which answers None for a None entry in `sys.modules`; its cached
    answers are cleared on the way out, so a quantised model attached later finds the real package."""
    if not is_deferred("bitsandbytes"):  # imported for real (a quantised model may exist), or not installed
        yield
        return
    from peft import import_utils

    checks = (import_utils.is_bnb_available, import_utils.is_bnb_4bit_available)
    stand_in = sys.modules["bitsandbytes"]
    sys.modules["bitsandbytes"] = None
    for check in checks:
        check.cache_clear()
    try:
        yield
    finally:
        if sys.modules.get("bitsandbytes") is None:
            sys.modules["bitsandbytes"] = stand_in
        for check in checks:
            check.cache_clear()


for _name in DEFERRED:
    defer(_name)
