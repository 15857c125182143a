"""Quantised frozen weights: the text encoders' and, under LoRA, the denoiser's base (QLoRA).

bitsandbytes stores each `nn.Linear` weight in 8 bits (LLM.int8, outliers in 16 bits) or in 4-bit
NormalFloat blocks of 64 with one fp32 scale each (Dettmers et al. 2023, QLoRA); norms, embeddings,
convolutions and biases keep their precision. The swap happens on the loaded model, after any
loader (folder, hub id, single file) has run: diffusers' and transformers' `BitsAndBytesConfig`
loaders refuse to start without a GPU, while bitsandbytes' own layers run on CUDA and on the CPU
(so the tiny models' tests exercise the same path a rented GPU runs). peft recognises the layers
(`model.is_loaded_in_8bit / _4bit`) and wraps them with its bitsandbytes LoRA layers.
"""

from __future__ import annotations

import warnings

import torch

from coverforge.config import Config
from coverforge.errors import CoverforgeError

_FIELDS = {"unet": "quantize_denoiser", "text_encoder": "quantize_text_encoder", "text_encoder_2": "quantize_text_encoder"}
_KEEP = ["lm_head"]  # the LLM encoders' output head: never run for conditioning, and may share the embedding's tensor


def check_quantization(cfg: Config) -> None:
    """Quantised weights cannot be trained, nor saved as a model folder the stock loaders read: LoRA only."""
    for name in ("quantize_denoiser", "quantize_text_encoder"):
        kind = getattr(cfg.model, name)
        if kind != "none" and cfg.train.recipe != "lora":
            raise CoverforgeError(f"model.{name} = {kind!r} applies to LoRA runs only: train.recipe = {cfg.train.recipe!r} trains and "
                                  "saves the model's own weights, which must stay in full precision; set it to 'none' or use train.recipe = 'lora'")


def quantize_parts(parts, cfg: Config, device: torch.device, compute_dtype: torch.dtype) -> dict[str, str]:
    """Quantise the parts the config asks for, on `device` (where bitsandbytes quantises); returns {part: kind}."""
    check_quantization(cfg)
    done = {}
    for name, field in _FIELDS.items():
        module, kind = getattr(parts, name), getattr(cfg.model, field)
        if module is None or kind == "none":
            continue
        quantize_module(module, kind, device, compute_dtype)
        done[name] = kind
    return done


def quantize_module(module: torch.nn.Module, kind: str, device: torch.device, compute_dtype: torch.dtype) -> torch.nn.Module:
    """Swap every `nn.Linear` (but an LLM's `lm_head`) for bitsandbytes' layer and quantise it on `device`."""
    try:
        import bitsandbytes  # noqa: F401  (accelerate imports it lazily; fail here with the fix)
    except ImportError:
        raise CoverforgeError(f"quantised weights ({kind}) need bitsandbytes: pip install bitsandbytes==0.50.2") from None
    from accelerate.utils import BnbQuantizationConfig
    from accelerate.utils.bnb import replace_with_bnb_layers

    settings = BnbQuantizationConfig(load_in_8bit=kind == "int8", load_in_4bit=kind == "nf4", bnb_4bit_quant_type="nf4",
                                     bnb_4bit_compute_dtype=compute_dtype)
    replace_with_bnb_layers(module, settings, modules_to_not_convert=list(_KEEP))
    _keep_one_cpu_format(module)
    # Int8 layers compute in fp16 whatever the input (LLM.int8's own method), and say so on every call.
    warnings.filterwarnings("ignore", message="MatMul8bitLt: inputs will be cast")
    # bitsandbytes quantises a layer's weights when they first move to a device (from the CPU).
    module.to(device)
    # peft reads these flags to pick its bitsandbytes LoRA layers (accelerate sets them the same way).
    module.is_loaded_in_8bit, module.is_loaded_in_4bit = kind == "int8", kind == "nf4"
    return module


def _keep_one_cpu_format(module: torch.nn.Module) -> None:
    """On a CPU with AVX512-BF16, bitsandbytes' 4-bit layer repacks its weights in place on its first
    no-grad forward in eval mode (validation samples in the middle of a QLoRA run), computes with
    other kernels from then on, and asserts out_features % 32 == 0 (the tiny models crashed there on
    such machines, and their nf4 outputs drifted past the tests' bounds). Off: one weight format and
    one kernel for training and sampling on every CPU; on a GPU the flag is never read."""
    from bitsandbytes.nn import Linear4bit

    for layer in module.modules():
        if isinstance(layer, Linear4bit):
            layer.support_avx512bf16_for_cpu = False


def quantization_of(module: torch.nn.Module | None) -> str:
    """'int8', 'nf4' or 'none': what `quantize_module` did to this module."""
    if module is None:
        return "none"
    return "int8" if getattr(module, "is_loaded_in_8bit", False) else "nf4" if getattr(module, "is_loaded_in_4bit", False) else "none"


def move_quantized_state(module: torch.nn.Module, device: torch.device) -> None:
    """`module.to(device)` moves parameters and buffers; bitsandbytes' int8 layers also keep their
    weights and scales in a side `state` after their first call, which only the layer's own `to` moves."""
    if quantization_of(module) != "int8":
        return
    import bitsandbytes as bnb

    for layer in module.modules():
        if isinstance(layer, bnb.nn.Linear8bitLt):
            layer.to(device)


def tensor_bytes(module: torch.nn.Module, device: torch.device | None = None) -> int:
    """Bytes of the module's weights (parameters, buffers, bitsandbytes' scales), on `device` if given."""
    seen, total = set(), 0
    for t in _tensors(module):
        if id(t) in seen or (device is not None and t.device != torch.device(device)):
            continue
        seen.add(id(t))
        total += t.numel() * t.element_size()
    return total


def _tensors(module: torch.nn.Module):
    yield from module.parameters()
    yield from module.buffers()
    for layer in module.modules():
        state = getattr(layer, "state", None)  # Linear8bitLt's row scales
        if state is not None and getattr(state, "SCB", None) is not None:
            yield state.SCB
        quant = getattr(getattr(layer, "weight", None), "quant_state", None)  # Linear4bit's block scales
        if quant is not None:
            yield from (t for t in (quant.absmax, quant.code, *(() if quant.state2 is None else (quant.state2.absmax, quant.state2.code)))
                        if isinstance(t, torch.Tensor))
