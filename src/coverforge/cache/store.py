"""A folder of safetensors shards holding keyed entries (each entry: a few named tensors).

Writers never touch an existing shard: each build writes the entries it computed into a new
shard (one per process in a multi-process run), atomically (temporary name, then rename), so
concurrent builders and killed builds never leave a half-written shard that readers would open.
Readers index every shard's header and memory-map tensors on demand.
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


class ShardStore:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._where: dict[str, tuple[Path, list[str]]] = {}
        self._handles: dict[Path, object] = {}
        self.refresh()

    def __getstate__(self) -> dict:
        # Open shard handles do not cross process boundaries (DataLoader workers); reopen lazily.
        return {**self.__dict__, "_handles": {}}

    def refresh(self) -> None:
        """(Re)index every complete shard in the folder: another process may have added some."""
        self._handles.clear()
        self._where.clear()
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
        shard, fields = self._where[key]
        handle = self._handles.get(shard)
        if handle is None:
            handle = self._handles[shard] = safe_open(shard, framework="pt")
        return {field: handle.get_tensor(f"{key}{SEPARATOR}{field}") for field in fields}

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
