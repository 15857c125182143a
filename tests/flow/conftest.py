"""Session fixtures of the flow-family stage tests: one tiny model of each family, built once, and the
colour dataset (helpers: flow_kit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flow_kit import FAMILIES, write_colour_dataset


@pytest.fixture(scope="session")
def flow_models(tmp_path_factory) -> dict[str, Path]:
    from coverforge.models.tiny import write_tiny_model

    root = tmp_path_factory.mktemp("tiny-flow-stages")
    return {family: write_tiny_model(family, root / family, seed=0) for family in FAMILIES}


@pytest.fixture(scope="session")
def flow_dataset(tmp_path_factory) -> Path:
    return write_colour_dataset(tmp_path_factory.mktemp("flow-colours"))
