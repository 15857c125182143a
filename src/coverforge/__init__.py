"""coverforge: fine-tune Stable Diffusion on a book catalogue and make finished book covers."""

from coverforge import deferred_imports  # noqa: F401  (before any diffusers import: see the module)

__version__ = "0.1.0"
