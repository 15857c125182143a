"""One loader for every family: local diffusers folder, hub id, or single-file checkpoint.

The family is read from the folder's configs (second text encoder / `text_time` conditioning ->
sdxl; an OpenCLIP text encoder (gelu) -> sd2; otherwise sd15; the transformer's class ->
qwen-image or z-image), never guessed from a name. Which class loads each component is the
family's (models/families.py); the flow families keep their transformer in `ModelParts.unet`, the
slot every stage reads the denoiser from.
Weights load through safetensors; pickled files are refused unless `allow_pickle` is set.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from coverforge.errors import CoverforgeError
from coverforge.models.families import FAMILIES, family_of

PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth")
# Flow-matching transformer families, known by the transformer class in model_index.json.
TRANSFORMER_FAMILIES = {f.classes["transformer"]: name for name, f in FAMILIES.items() if f.denoiser == "transformer"}


@dataclass
class ModelParts:
    """The components training and generation need, whatever the family."""

    family: str
    unet: torch.nn.Module
    """The denoiser: a UNet, or the flow families' transformer."""
    vae: torch.nn.Module | None
    text_encoder: torch.nn.Module
    tokenizer: object
    scheduler_config: dict
    text_encoder_2: torch.nn.Module | None = None
    tokenizer_2: object | None = None
    source: str = ""

    @property
    def text_encoders(self) -> list[torch.nn.Module]:
        return [te for te in (self.text_encoder, self.text_encoder_2) if te is not None]

    def predicting(self, prediction_type: str) -> "ModelParts":
        """Trained with a `train.prediction_type` override, the model predicts that: its sampler
        and saved scheduler must say so, not what the base model predicted. "" keeps the base's."""
        if prediction_type:
            self.scheduler_config = {**self.scheduler_config, "prediction_type": prediction_type}
        return self


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CoverforgeError(f"{path} is missing: the model folder is incomplete") from None
    except json.JSONDecodeError as e:
        raise CoverforgeError(f"{path} is not valid JSON ({e}): the model folder is corrupt") from None


def detect_family(folder: str | Path) -> str:
    """sd15 | sd2 | sdxl | qwen-image | z-image from a diffusers folder's configs."""
    folder = Path(folder)
    index = _read_json(folder / "model_index.json")
    transformer = (index.get("transformer") or [None, None])[-1]  # [library, class]; [null, null] if absent
    if transformer in TRANSFORMER_FAMILIES:
        return TRANSFORMER_FAMILIES[transformer]
    if transformer:
        raise CoverforgeError(
            f"{folder / 'model_index.json'}: a {index.get('_class_name')} model ({transformer}), which coverforge "
            "does not read; use an sd15, sd2 or sdxl model"
        )
    unet_cfg = _read_json(folder / "unet" / "config.json")
    if "text_encoder_2" in index or unet_cfg.get("addition_embed_type") == "text_time":
        return "sdxl"
    te_cfg = _read_json(folder / "text_encoder" / "config.json")
    # SD 2.x uses OpenCLIP ViT-H (gelu); SD 1.x uses OpenAI CLIP-L (quick_gelu).
    return "sd2" if te_cfg.get("hidden_act") == "gelu" else "sd15"


def _check_weights(component: Path, allow_pickle: bool) -> bool:
    """True when the component should load from safetensors; refuses pickles unless allowed."""
    if not component.is_dir():
        raise CoverforgeError(f"{component} is missing: the model folder is incomplete")
    if not (component / "config.json").is_file():
        raise CoverforgeError(f"{component / 'config.json'} is missing")
    if any(component.glob("*.safetensors")):
        return True
    pickles = [p.name for p in component.iterdir() if p.suffix in PICKLE_SUFFIXES]
    if not pickles:
        raise CoverforgeError(f"{component} holds no weights (*.safetensors)")
    if not allow_pickle:
        raise CoverforgeError(
            f"{component / pickles[0]} is a pickled checkpoint, which can run code when loaded; convert it "
            "to safetensors, or set model.allow_pickle = true if you trust the file"
        )
    return False


def load_folder(folder: str | Path, family: str = "", allow_pickle: bool = False, dtype: torch.dtype = torch.float32,
                denoiser: torch.nn.Module | None = None) -> ModelParts:
    """Load a local diffusers folder, each component with its family's class. `denoiser`: one
    already loaded from a single file; the folder's own denoiser weights are then neither read nor needed."""
    import diffusers
    import transformers
    from safetensors import SafetensorError

    folder = Path(folder)
    detected = detect_family(folder)
    index = _read_json(folder / "model_index.json")
    if family and family != detected:
        raise CoverforgeError(f"model.family = {family!r} but {folder} holds an {detected} model")
    f = family_of(detected)
    scheduler_config = _read_json(folder / "scheduler" / "scheduler_config.json")

    def load(name: str):
        cls_name = f.classes[name]
        cls = getattr(diffusers, cls_name, None) or getattr(transformers, cls_name)
        safe = _check_weights(folder / name, allow_pickle)
        try:
            return cls.from_pretrained(folder / name, use_safetensors=safe, torch_dtype=dtype)
        except (OSError, ValueError, RuntimeError, SafetensorError) as e:
            raise CoverforgeError(f"could not load {folder / name}: {str(e).splitlines()[0]}") from None

    def tokenizer(name: str):
        if not (folder / name).is_dir():
            raise CoverforgeError(f"{folder / name} is missing: the model folder is incomplete")
        try:
            return getattr(transformers, f.classes[name]).from_pretrained(folder / name)
        except (OSError, ValueError) as e:
            raise CoverforgeError(f"could not load the tokenizer in {folder / name}: {str(e).splitlines()[0]}") from None

    parts = ModelParts(
        family=detected,
        unet=denoiser if denoiser is not None else load(f.denoiser),
        # Pixel-space models trained from scratch have no VAE.
        vae=load("vae") if "vae" in index else None,
        text_encoder=load("text_encoder"),
        tokenizer=tokenizer("tokenizer"),
        scheduler_config=dict(scheduler_config),
        source=str(folder),
    )
    if len(f.text) > 1:
        parts.text_encoder_2 = load("text_encoder_2")
        parts.tokenizer_2 = tokenizer("tokenizer_2")
    return parts


def _looks_like_hub_id(path: str) -> bool:
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", path)) and not Path(path).exists()


def download_from_hub(repo_id: str) -> Path:
    """Fetch the diffusers folder of a hub repo (weights as safetensors only)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"]))
    except Exception as e:  # the hub raises many types: offline, 404, gated, connection
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CoverforgeError(
            f"could not get {repo_id!r} from the Hugging Face hub ({reason}). Download it on a connected "
            "machine (`huggingface-cli download ID --local-dir DIR`) and set model.path to that folder"
        ) from None


def load_single_file(path: Path, config_folder: str | Path, allow_pickle: bool = False, dtype=torch.float32) -> ModelParts:
    """A single-file checkpoint plus a local diffusers folder that supplies configs and tokenizers.

    Three key layouts are read: the original LDM layout (A1111/ComfyUI checkpoints), converted by
    diffusers' single-file loader; a packed diffusers layout (`unet.*` or `transformer.*`, `vae.*`,
    `text_encoder.*`, `text_encoder_2.*`), as `save_single_file` writes; and, for the flow families,
    a transformer-only file as they are distributed (original or diffusers keys), which diffusers'
    `from_single_file` converts.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not config_folder:
        raise CoverforgeError(f"{path} is a single-file checkpoint: set model.config_folder to a local diffusers folder with the configs")
    if path.suffix != ".safetensors":
        if not allow_pickle:
            raise CoverforgeError(f"{path} is a pickled checkpoint; convert it to .safetensors or set model.allow_pickle = true")
    f = family_of(detect_family(config_folder))  # before reading a file of many GB
    try:
        state = load_file(path) if path.suffix == ".safetensors" else torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, OSError, RuntimeError) as e:
        raise CoverforgeError(f"could not read {path}: {e}") from None
    packed = (f.denoiser, "vae", "text_encoder", "text_encoder_2")
    if f.has_flow and not any(k.startswith(tuple(p + "." for p in packed)) for k in state):
        # A transformer alone (20-40 GB for these families): the config folder need not hold its weights.
        transformer = _load_transformer_file(path, state, config_folder, f, dtype)
        parts = load_folder(config_folder, allow_pickle=allow_pickle, dtype=dtype, denoiser=transformer)
        parts.source = str(path)
        return parts
    parts = load_folder(config_folder, allow_pickle=allow_pickle, dtype=dtype)
    prefixes = {f.denoiser: parts.unet, "vae": parts.vae, "text_encoder": parts.text_encoder, "text_encoder_2": parts.text_encoder_2}
    if any(k.startswith("model.diffusion_model.") for k in state):
        return _load_ldm_single_file(path, config_folder, parts, dtype)
    for prefix, module in prefixes.items():
        sub = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
        if module is None or not sub:
            continue
        try:
            missing, unexpected = module.load_state_dict(sub, strict=False)
        except RuntimeError as e:  # shape mismatches: a checkpoint of another family or size
            raise CoverforgeError(f"{path}: {prefix} weights do not fit the model in {config_folder} ({str(e).splitlines()[0]})") from None
        if missing or unexpected:
            raise CoverforgeError(f"{path}: {prefix} weights do not match {config_folder} ({len(missing)} missing, {len(unexpected)} unexpected keys)")
    parts.source = str(path)
    return parts


def _load_ldm_single_file(path: Path, config_folder, parts: ModelParts, dtype) -> ModelParts:
    f = family_of(parts.family)
    cls = f.pipeline_class()
    try:
        pipe = cls.from_single_file(str(path), config=str(config_folder), local_files_only=True, torch_dtype=dtype)
    except Exception as e:
        raise CoverforgeError(f"could not convert {path} with the configs of {config_folder}: {str(e).splitlines()[0]}") from None
    parts.unet, parts.vae = pipe.unet, pipe.vae
    for name in f.text_encoders:
        setattr(parts, name, getattr(pipe, name))
    parts.source = str(path)
    return parts


def _load_transformer_file(path: Path, state: dict, config_folder, f, dtype) -> torch.nn.Module:
    """A flow family's transformer alone, in diffusers' or the original layout (diffusers'
    `from_single_file` converts Z-Image's fused qkv; Qwen-Image's keys are diffusers'), with or
    without ComfyUI's `model.diffusion_model.` prefix; its config from the config folder."""
    import diffusers

    cls = getattr(diffusers, f.classes[f.denoiser])
    state = {k.removeprefix("model.diffusion_model."): v for k, v in state.items()}
    try:
        model = cls.from_single_file(state, config=str(config_folder), subfolder=f.denoiser, local_files_only=True, torch_dtype=dtype)
        # from_single_file leaves the weights a file lacks on the meta device instead of failing.
        complete = not any(p.is_meta for p in model.state_dict().values())
    except Exception as e:
        # ...and then fails to move those meta weights to the device or dtype.
        if "meta tensor" not in str(e):
            raise CoverforgeError(f"could not read {path} as a {f.name} transformer with the configs of {config_folder}: "
                                  f"{str(e).splitlines()[0]}") from None
        complete = False
    if not complete:
        raise CoverforgeError(f"{path} is not a whole {f.name} transformer for the configs of {config_folder}: weights are missing")
    return model


def save_single_file(parts: ModelParts, path: str | Path) -> None:
    """Write all weights into one safetensors file with component prefixes."""
    from safetensors.torch import save_file

    state = {}
    modules = {family_of(parts.family).denoiser: parts.unet, "vae": parts.vae, "text_encoder": parts.text_encoder,
               "text_encoder_2": parts.text_encoder_2}
    for prefix, module in modules.items():
        if module is not None:
            state.update({f"{prefix}.{k}": v.contiguous() for k, v in module.state_dict().items()})
    save_file(state, str(path), metadata={"format": "pt", "family": parts.family})


def load_model(path: str, family: str = "", config_folder: str = "", allow_pickle: bool = False, dtype: torch.dtype = torch.float32) -> ModelParts:
    """Load a base model from a local folder, a single file, or a hub id."""
    if not path:
        raise CoverforgeError("model.path is empty: give a diffusers folder, a .safetensors file or a hub id")
    p = Path(path).expanduser()
    if p.is_file():
        parts = load_single_file(p, config_folder, allow_pickle, dtype)
    elif p.is_dir():
        parts = load_folder(p, family, allow_pickle, dtype)
    elif _looks_like_hub_id(path):
        parts = load_folder(download_from_hub(path), family, allow_pickle, dtype)
    else:
        raise CoverforgeError(f"model.path {path!r} is neither a local folder, a file, nor a hub id (owner/name)")
    if family and parts.family != family:
        raise CoverforgeError(f"model.family = {family!r} but {path} holds an {parts.family} model")
    return parts
