"""bitsandbytes stays unimported until something quantises (coverforge/deferred_imports.py): loading
a model and attaching, saving and loading LoRA adapters leave it a stand-in, and a quantised model
attached afterwards in the same process still gets peft's bitsandbytes LoRA layers.

Each check runs in a fresh interpreter: the test process may have imported bitsandbytes already."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("bitsandbytes")

SCRIPT = textwrap.dedent("""
    import sys, tempfile
    import torch
    import coverforge
    from coverforge.deferred_imports import is_deferred
    from coverforge.config import LoraConfig
    from coverforge.models.loading import load_model
    from coverforge.models.lora import add_text_lora, add_unet_lora, load_lora_into, save_lora
    from coverforge.models.tiny import write_tiny_model

    assert is_deferred("bitsandbytes"), "not deferred at start"
    out = tempfile.mkdtemp()
    parts = load_model(str(write_tiny_model("sd15", out + "/model")))
    assert is_deferred("bitsandbytes"), "loading a model imported bitsandbytes"
    cfg = LoraConfig(rank=2, alpha=2.0)
    add_unet_lora(parts.unet, cfg)
    add_text_lora(parts.text_encoder, cfg)
    save_lora(out + "/lora", "sd15", unet=parts.unet, text_encoder=parts.text_encoder)
    fresh = load_model(out + "/model")
    load_lora_into(fresh, out + "/lora")
    assert is_deferred("bitsandbytes"), "attaching or loading LoRA imported bitsandbytes"
    assert sys.modules["bitsandbytes"] is not None

    # Now quantise: the real package loads, and peft (whose availability checks are cached) must see it.
    import peft.import_utils
    from peft.tuners.lora.bnb import Linear8bitLt as LoraLinear8bit
    from coverforge.models.quantize import quantize_module
    assert peft.import_utils.is_bnb_available() and peft.import_utils.is_bnb_4bit_available()
    net = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16))
    quantize_module(net, "int8", torch.device("cpu"), torch.float32)
    import bitsandbytes as bnb
    assert not is_deferred("bitsandbytes") and isinstance(net[0], bnb.nn.Linear8bitLt)
    from peft import LoraConfig as PeftLoraConfig, inject_adapter_in_model
    inject_adapter_in_model(PeftLoraConfig(r=2, target_modules=["0", "2"]), net)
    assert isinstance(net[0], LoraLinear8bit), type(net[0])
    print("ok")
""")


def test_model_and_lora_leave_bitsandbytes_unimported_and_quantising_after_still_works(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_stand_in_answers_find_spec_and_imports_the_real_package_on_first_use():
    code = textwrap.dedent("""
        import importlib.util, sys
        import coverforge
        from coverforge.deferred_imports import is_deferred
        import bitsandbytes as early  # what diffusers' quantizer module binds at import time
        assert is_deferred("bitsandbytes") and importlib.util.find_spec("bitsandbytes") is not None
        linear = early.nn.Linear4bit  # first use: the real package loads
        real = sys.modules["bitsandbytes"]
        assert real is not early and not is_deferred("bitsandbytes")
        assert early.nn is real.nn and early.__version__ == real.__version__
        import bitsandbytes.optim
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_pickles_lookup_of_a_module_name_leaves_bitsandbytes_deferred():
    """torch.compile hashes its graphs with a pickler; pickle's whichmodule() asks every module in
    sys.modules for the names of what it pickles (here `torch`), which imported the real package
    (45 MB, 1-2.5 s) in every `run.compile_unet` run."""
    code = textwrap.dedent("""
        import pickle, sys
        import torch
        import coverforge
        from coverforge.deferred_imports import is_deferred
        assert is_deferred("bitsandbytes")
        try:
            sys.modules["bitsandbytes"].torch
        except AttributeError:
            pass
        else:
            raise AssertionError("the stand-in answered a module name")
        def made_here():
            pass
        made_here.__module__ = None  # so whichmodule() scans sys.modules, asking each module for the name
        assert pickle.whichmodule(made_here, "torch") == "__main__"
        assert is_deferred("bitsandbytes"), "a module-name lookup imported bitsandbytes"
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
