"""The family registry: what differs between families is stated there, and nowhere else tests a name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from coverforge.models.families import FAMILIES, family_of

SRC = Path(__file__).resolve().parents[2] / "src" / "coverforge"
# Where naming a family is the point: the registry, detection from configs, and the tiny-model builders.
MAY_NAME_FAMILIES = {"models/families.py", "models/loading.py", "models/tiny.py", "models/tiny_flow.py"}


def _compares_a_family_name(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            values = [node.left, *node.comparators]
            consts = [v for v in values if isinstance(v, ast.Constant)]
            consts += [e for v in values if isinstance(v, (ast.Tuple, ast.List, ast.Set)) for e in v.elts if isinstance(e, ast.Constant)]
            if any(c.value in FAMILIES for c in consts):
                lines.append(node.lineno)
    return lines


def test_no_stage_tests_a_family_by_name():
    found = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel in MAY_NAME_FAMILIES:
            continue
        lines = _compares_a_family_name(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            found[rel] = lines
    assert not found, f"ask models/families.family_of(...) instead: {found}"


def test_the_guard_sees_a_name_test():
    assert _compares_a_family_name(ast.parse('if parts.family == "sdxl":\n    pass\n')) == [1]
    assert _compares_a_family_name(ast.parse('ok = family in ("sd15", "sd2")\n')) == [1]


def test_each_family_reads_its_encoders_as_the_stock_pipeline():
    sd, xl = family_of("sd15"), family_of("sdxl")
    assert [(r.hidden_offset, r.final_norm, r.pooled) for r in sd.text] == [(-1, True, False)]
    assert [(r.hidden_offset, r.final_norm, r.pooled) for r in xl.text] == [(-2, False, False), (-2, False, True)]
    assert xl.text_encoders == ("text_encoder", "text_encoder_2") and sd.text_encoders == ("text_encoder",)
    assert len(xl.kohya_text_prefixes) == len(xl.text) and len(sd.kohya_text_prefixes) == len(sd.text)
    for family in FAMILIES.values():
        assert family.pipeline_class().__name__ == family.pipeline


def test_an_unknown_family_is_named():
    with pytest.raises(ValueError, match="unknown family 'sd3'"):
        family_of("sd3")
