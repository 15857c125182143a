"""Session fixtures of the flow-family stage tests: the colour dataset (helpers: flow_kit.py). The
tiny model of each family is tests/conftest.py's `flow_models`, built once for the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest

from flow_kit import write_colour_dataset


@pytest.fixture(scope="session")
def flow_dataset(tmp_path_factory) -> Path:
    return write_colour_dataset(tmp_path_factory.mktemp("flow-colours"))
