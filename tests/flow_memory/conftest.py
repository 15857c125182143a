"""Session fixtures of the memory-option tests: one tiny model of each flow family, built once."""

from __future__ import annotations

from pathlib import Path

import pytest

FAMILIES = ("qwen-image", "z-image")


@pytest.fixture(scope="session")
def memory_models(tmp_path_factory) -> dict[str, Path]:
    from coverforge.models.tiny import write_tiny_model

    root = tmp_path_factory.mktemp("tiny-flow-memory")
    return {family: write_tiny_model(family, root / family, seed=0) for family in FAMILIES}
