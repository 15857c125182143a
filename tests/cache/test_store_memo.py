"""The shard store keeps entries it has read in memory (cache/store.py MEMO_BYTES): later reads do
not touch the shard, the budget bounds it, and training reads the same numbers either way."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

import coverforge.cache.store as store_module
from coverforge.cache.store import ShardStore
from coverforge.config import config_from_dict
from coverforge.training import loop
from conftest import write_colour_dataset


class CountingHandle:
    """A safe_open handle that counts the tensors read through it."""

    def __init__(self, handle, reads: list[str]):
        self.handle, self.reads = handle, reads

    def get_tensor(self, name: str) -> torch.Tensor:
        self.reads.append(name)
        return self.handle.get_tensor(name)

    def keys(self):
        return self.handle.keys()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.handle.__exit__(*exc)


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    names: list[str] = []
    opened = store_module.safe_open
    monkeypatch.setattr(store_module, "safe_open", lambda *a, **k: CountingHandle(opened(*a, **k), names))
    return names


def entries(n: int) -> dict[str, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return {f"key{i}": {"hidden": torch.randn(77, 8, generator=g), "sizes": torch.arange(6) + i} for i in range(n)}  # 2,512 bytes each


def test_an_entry_read_once_is_served_from_memory(tmp_path, reads):
    written = entries(3)
    store = ShardStore(tmp_path)
    store.write_shard(written, "t")
    store.refresh()
    for _ in range(3):
        for key, fields in written.items():
            got = store.get(key)
            assert got.keys() == fields.keys() and all(torch.equal(got[f], fields[f]) for f in fields)
    assert len(reads) == 3 * 2  # each entry's two tensors, once
    got = store.get("key0")
    got["hidden"] = None  # a caller changing its dict does not change the kept entry
    assert torch.equal(store.get("key0")["hidden"], written["key0"]["hidden"])
    # A DataLoader worker gets a copy without the kept entries and reads them itself.
    worker = pickle.loads(pickle.dumps(store))
    assert torch.equal(worker.get("key1")["sizes"], written["key1"]["sizes"])
    assert len(reads) == 3 * 2 + 2


def test_the_store_keeps_no_more_than_its_budget(tmp_path, reads, monkeypatch):
    monkeypatch.setattr(store_module, "MEMO_BYTES", 2 * 2512)
    written = entries(4)
    store = ShardStore(tmp_path)
    store.write_shard(written, "t")
    store.refresh()
    for _ in range(2):
        for key, fields in written.items():
            assert torch.equal(store.get(key)["hidden"], fields["hidden"])
    # The first two entries fill the budget: read once; the other two are read on every get.
    assert {name: reads.count(name) for name in set(reads)} == {f"key{i}/{f}": 1 if i < 2 else 2 for i in range(4) for f in ("hidden", "sizes")}
    store.refresh()  # re-indexing (another process added a shard) forgets what was kept
    store.get("key0")
    assert reads.count("key0/hidden") == 2


def test_training_over_epochs_reads_the_same_numbers_from_memory(tiny_models, tmp_path, monkeypatch):
    dataset = write_colour_dataset(tmp_path / "ds", n_per_colour=1)  # four covers: one batch an epoch
    results, default = {}, store_module.MEMO_BYTES
    for budget in (0, default):
        monkeypatch.setattr(store_module, "MEMO_BYTES", budget)
        cfg = config_from_dict({
            "model": {"path": str(tiny_models["sd15"])},
            "data": {"dataset": str(dataset), "resolution": 32, "caption_dropout": 0.25},
            "train": {"recipe": "lora", "batch_size": 4, "lr_unet": 1e-3, "max_steps": 3, "seed": 0},
            "run": {"cache_dir": str(tmp_path / f"cache-{budget}"), "checkpoint_every": 1000},
            "lora": {"rank": 4, "alpha": 4},
        })
        result = loop.train(cfg, tmp_path / f"run-{budget}", progress=False)
        summary = json.loads((tmp_path / f"run-{budget}" / "logs" / "process-0.json").read_text())
        results[budget] = (result.losses, summary["weights_sha256"])
    assert results[0] == results[default]  # three epochs, bit for bit
