"""coverforge: fine-tune Stable Diffusion on a book catalogue and make finished book covers."""

__version__ = "0.1.0"
