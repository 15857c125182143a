"""What differs between model families, stated once per family.

The loop, the caches, generation, saving and export ask the family (`family_of(parts.family)`)
instead of testing its name. Each entry follows the stock diffusers pipeline of that family; the
detection of a family from a folder's configs is `models/loading.detect_family`.

Qwen-Image and Z-Image are flow-matching transformers with LLM text encoders: their entries carry a
`FlowModel` (models/qwen_image.py, models/z_image.py) for the steps they take their own way, and
`has_flow` is the one question stages ask to pick the flow-matching path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coverforge.models.flow_model import FlowModel
from coverforge.models.qwen_image import LORA_PRESETS as QWEN_IMAGE_PRESETS
from coverforge.models.qwen_image import QWEN_IMAGE
from coverforge.models.z_image import LORA_PRESETS as Z_IMAGE_PRESETS
from coverforge.models.z_image import Z_IMAGE


@dataclass(frozen=True)
class TextRead:
    """How the conditioning reads one text encoder (with clip_skip 0)."""

    hidden_offset: int
    """Which of `hidden_states` is read, counted from the end: -1 the last layer's output, -2 the
    penultimate. clip_skip k moves it k layers further down."""
    final_norm: bool
    """Apply the encoder's final layer norm to it (SD 1.x / 2.x do; SDXL does not)."""
    pooled: bool = False
    """The encoder's projected pooled embedding conditions the model too (SDXL's second encoder);
    with it go SDXL's size and crop ids (text/conditioning.sdxl_time_ids)."""


@dataclass(frozen=True)
class Family:
    name: str
    pipeline: str
    """The diffusers pipeline class that loads, saves and runs this family's folders and LoRAs."""
    text: tuple[TextRead, ...]
    """One entry per text encoder, in the pipeline's order (text_encoder, text_encoder_2)."""
    zero_empty_negative: bool = False
    """An empty negative prompt conditions on zeros, not on the encoded "" (SDXL's force_zeros_for_empty_prompt)."""
    safety_checker_slots: bool = False
    """model_index.json names (empty) safety_checker and feature_extractor components."""
    kohya_text_prefixes: tuple[str, ...] = ("te",)
    """kohya's module-name prefix of each text encoder's adapters (lora_te_..., lora_te1_...)."""
    kohya_unet_original_names: bool = False
    """kohya names the UNet's adapters after the original (SGM) checkpoint's modules, not diffusers'."""
    classes: dict[str, str] = field(default_factory=lambda: dict(_SD_CLASSES))
    """The class of each component in a diffusers folder (libraries: diffusers, transformers)."""
    denoiser: str = "unet"
    """The denoiser's component name in folders, pipelines and LoRA files (unet | transformer)."""
    flow: FlowModel | None = None
    """Flow-matching transformer families: the steps they take their own way (None: SD's DDPM path)."""
    training_scheduler: str = "DDPMScheduler"
    """The scheduler class that noises training batches and is saved with full fine-tunes."""
    lora_presets: dict[str, list[str]] = field(default_factory=lambda: dict(UNET_PRESETS))
    """lora.unet_preset -> the denoiser's modules that get adapters."""
    text_lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
    """The text encoders' modules that get adapters when lora.text_targets is left empty."""

    @property
    def has_flow(self) -> bool:
        return self.flow is not None

    @property
    def text_encoders(self) -> tuple[str, ...]:
        return ("text_encoder", "text_encoder_2")[: len(self.text)]

    def pipeline_class(self):
        import diffusers

        return getattr(diffusers, self.pipeline)


# Which UNet modules each LoRA preset adapts. `attn` is the seed's recipe: attention projections and
# the transformer blocks' in/out projections. Convolutions made the seed's model drift to grayscale,
# so they are opt-in.
UNET_PRESETS = {
    "attn": ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out"],
    "attn+ff": ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"],
    "attn+conv": ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "conv1", "conv2", "conv_shortcut"],
}
_LLM_TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_SD_TEXT = (TextRead(-1, final_norm=True),)
_SD_CLASSES = {"unet": "UNet2DConditionModel", "vae": "AutoencoderKL", "text_encoder": "CLIPTextModel",
               "text_encoder_2": "CLIPTextModelWithProjection", "tokenizer": "CLIPTokenizer", "tokenizer_2": "CLIPTokenizer"}
_FLOW = "FlowMatchEulerDiscreteScheduler"

FAMILIES = {
    "sd15": Family("sd15", "StableDiffusionPipeline", _SD_TEXT, safety_checker_slots=True),
    "sd2": Family("sd2", "StableDiffusionPipeline", _SD_TEXT, safety_checker_slots=True),
    "sdxl": Family(
        "sdxl", "StableDiffusionXLPipeline",
        # Both encoders' penultimate layer, un-normed; the pooled embedding is encoder 2's projection.
        (TextRead(-2, final_norm=False), TextRead(-2, final_norm=False, pooled=True)),
        zero_empty_negative=True, kohya_text_prefixes=("te1", "te2"), kohya_unet_original_names=True,
    ),
    "qwen-image": Family(
        "qwen-image", "QwenImagePipeline", (TextRead(QWEN_IMAGE.hidden_offset, QWEN_IMAGE.final_norm),),
        classes={"transformer": "QwenImageTransformer2DModel", "vae": "AutoencoderKLQwenImage",
                 "text_encoder": "Qwen2_5_VLForConditionalGeneration", "tokenizer": "Qwen2Tokenizer"},
        denoiser="transformer", flow=QWEN_IMAGE, training_scheduler=_FLOW, lora_presets=QWEN_IMAGE_PRESETS,
        text_lora_targets=_LLM_TEXT_TARGETS,
    ),
    "z-image": Family(
        "z-image", "ZImagePipeline", (TextRead(Z_IMAGE.hidden_offset, Z_IMAGE.final_norm),),
        classes={"transformer": "ZImageTransformer2DModel", "vae": "AutoencoderKL", "text_encoder": "Qwen3Model",
                 "tokenizer": "Qwen2Tokenizer"},
        denoiser="transformer", flow=Z_IMAGE, training_scheduler=_FLOW, lora_presets=Z_IMAGE_PRESETS,
        text_lora_targets=_LLM_TEXT_TARGETS,
    ),
}


def family_of(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}") from None
