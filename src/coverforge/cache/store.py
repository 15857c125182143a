"""A folder of safetensors shards holding keyed entries (each entry: a few named tensors).

Writers never touch an existing shard: each build writes the entries it computed into a new
shard (one per process in a multi-process run), atomically (temporary name, then rename), so
concurrent builders and killed builds never leave a half-written shard that readers would open.
Readers index every shard's header and memory-map tensors on demand, and keep the entries they
have read in memory up to `MEMO_BYTES`: each read from a shard costs 50-100 us a tensor, about 2%
of a tiny model's training step, where a kept entry costs a dictionary look-up.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

SEPARATOR = "/"  # tensor name in a shard: "<entry key>/<field>"
MEMO_BYTES = 64 * 2**20
"""Entries each store keeps in memory once read (then no more are added). Training reads every entry
once an epoch: a cache this size is read from memory from the second epoch on. Covers the bench
datasets many times over (64 covers at 128 px, SDXL: 4 MB); at SDXL's 1024 px an entry is about
1 MB, and its read is small beside a step."""


class ShardStore:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._where: dict[str, tuple[Path, list[str]]] = {}
        self._handles: dict[Path, object] = {}
        self._memo: dict[str, dict[str, torch.Tensor]] = {}
        self._memo_bytes = 0
        self.refresh()

    def __getstate__(self) -> dict:
        # Open shard handles do not cross process boundaries (DataLoader workers); reopen lazily.
        # Each worker keeps its own memo of what it reads.
        return {**self.__dict__, "_handles": {}, "_memo": {}, "_memo_bytes": 0}

    def refresh(self) -> None:
        """(Re)index every complete shard in the folder: another process may have added some."""
        self._handles.clear()
        self._where.clear()
        self._memo.clear()
        self._memo_bytes = 0
        if not self.folder.is_dir():
            return
        for shard in sorted(self.folder.glob("*.safetensors")):
            with safe_open(shard, framework="pt") as f:
                names = list(f.keys())
            fields: dict[str, list[str]] = {}
            for name in names:
                key, _, field = name.partition(SEPARATOR)
                fields.setdefault(key, []).append(field)
            for key, names_of_key in fields.items():
                self._where[key] = (shard, names_of_key)

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def __len__(self) -> int:
        return len(self._where)

    def keys(self) -> set[str]:
        return set(self._where)

    def get(self, key: str) -> dict[str, torch.Tensor]:
        """The entry's tensors. Kept entries come back as the same tensors each time: read them, do
        not change them in place."""
        entry = self._memo.get(key)
        if entry is not None:
            return dict(entry)
        shard, fields = self._where[key]
        handle = self._handles.get(shard)
        if handle is None:
            handle = self._handles[shard] = safe_open(shard, framework="pt")
        entry = {field: handle.get_tensor(f"{key}{SEPARATOR}{field}") for field in fields}
        size = sum(t.numel() * t.element_size() for t in entry.values())
        if self._memo_bytes + size <= MEMO_BYTES:
            self._memo[key] = entry
            self._memo_bytes += size
        return dict(entry)

    def write_shard(self, entries: dict[str, dict[str, torch.Tensor]], tag: str, metadata: dict | None = None) -> Path | None:
        """Write entries as one new shard named after `tag` (e.g. the process index); returns its path."""
        if not entries:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"{key}{SEPARATOR}{field}": t.detach().to("cpu").contiguous() for key, fields in entries.items() for field, t in fields.items()}
        name = f"{tag}-{uuid.uuid4().hex[:12]}.safetensors"
        tmp = self.folder / f".tmp-{name}"
        save_file(tensors, str(tmp), metadata={"coverforge": json.dumps(metadata or {})})
        os.replace(tmp, self.folder / name)
        return self.folder / name

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("*.safetensors")) if self.folder.is_dir() else 0

    def compact(self, keep: set[str], tag: str = "compact") -> int:
        """Rewrite the folder with only the entries in `keep`; returns how many entries were dropped."""
        stale = [k for k in self._where if k not in keep]
        if not stale:
            return 0
        entries = {k: self.get(k) for k in self._where if k in keep}
        old = sorted(self.folder.glob("*.safetensors"))
        self._handles.clear()
        # Write the survivors first, then drop the old shards: a crash in between only leaves duplicates.
        new = self.write_shard(entries, tag)
        for shard in old:
            if shard != new:
                shard.unlink()
        self.refresh()
        return len(stale)
