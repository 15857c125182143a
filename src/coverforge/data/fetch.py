"""Concurrent, polite, resumable cover download (stdlib urllib + a thread pool).

Each URL lands in `dest/<sha256(url)[:20]><ext>`, written through a `.part` file and renamed, so
a file that exists is complete and a re-run fetches only what is missing. Only image bytes are
kept: content-type and magic bytes are both checked, and a size cap bounds memory and disk.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from coverforge.data.disk_space import is_full
from coverforge.hashing import sha256_hex

log = logging.getLogger(__name__)

# Magic bytes -> file extension for the formats Pillow reads that covers come in.
_MAGIC = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"BM", ".bmp"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
)
_OK_TYPES = ("image/", "application/octet-stream", "binary/octet-stream")
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


@dataclass
class FetchOptions:
    timeout: float = 20.0
    """Seconds a connect or a read may stall before the attempt fails."""
    retries: int = 3
    """Extra attempts after a transient failure (timeout, 5xx, 429, truncated body)."""
    backoff: float = 0.5
    """Seconds before the first retry; doubles each time."""
    max_bytes: int = 20 * 1024 * 1024
    """Larger responses are refused: no cover needs more."""
    workers: int = 8
    """Concurrent downloads; a polite limit on load on the catalogue's image host."""
    user_agent: str = "coverforge/0.1 (dataset preparation)"

    def __post_init__(self):
        if self.timeout <= 0 or self.retries < 0 or self.backoff < 0 or self.max_bytes <= 0 or self.workers < 1:
            raise ValueError(f"invalid FetchOptions: {self}")


@dataclass(frozen=True)
class FetchResult:
    url: str
    path: Path | None
    """The downloaded file, or None on failure."""
    error: str = ""
    downloaded: bool = False
    """False when the file was already there from an earlier run."""


class _Permanent(Exception):
    """A failure that retrying will not fix (404, not an image, too large)."""


def image_extension(head: bytes) -> str | None:
    """File extension for known image magic bytes, or None."""
    for magic, ext in _MAGIC:
        if head.startswith(magic):
            return ext
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    return None


def cached_path(url: str, dest: Path) -> Path | None:
    """The completed download for url in dest, if an earlier run left one."""
    stem = url_key(url)
    for candidate in sorted(dest.glob(stem + ".*")):
        if candidate.suffix != ".part":
            return candidate
    return None


def url_key(url: str) -> str:
    return sha256_hex(url.encode("utf-8"))[:20]


def fetch_all(urls: list[str], dest: str | Path, options: FetchOptions | None = None) -> dict[str, FetchResult]:
    """Download every distinct URL into dest (skipping ones already there); one result per URL."""
    options = options or FetchOptions()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    unique = list(dict.fromkeys(u for u in urls if u))
    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        results = list(pool.map(lambda u: fetch_one(u, dest, options), unique))
    return {r.url: r for r in results}


def fetch_one(url: str, dest: Path, options: FetchOptions) -> FetchResult:
    existing = cached_path(url, dest)
    if existing is not None:
        return FetchResult(url, existing)
    if not url.lower().startswith(("http://", "https://")):
        return FetchResult(url, None, f"not an http(s) URL: {url[:80]}")
    delay = options.backoff
    error = ""
    for attempt in range(options.retries + 1):
        try:
            data = _download(url, options)
            path = dest / (url_key(url) + image_extension(data))
            part = path.with_name(path.name + f".{os.getpid()}.part")
            part.write_bytes(data)
            os.replace(part, path)
            return FetchResult(url, path, downloaded=True)
        except _Permanent as e:
            return FetchResult(url, None, str(e))
        except OSError as e:
            if is_full(e):
                raise  # the disk is full: no retry and no other URL can succeed
            error = _describe(e)
            log.debug("attempt %d for %s failed: %s", attempt + 1, url, error)
        except http.client.HTTPException as e:
            error = _describe(e)
            log.debug("attempt %d for %s failed: %s", attempt + 1, url, error)
        except Exception as e:  # malformed URL and the like: report it, never stop the batch
            return FetchResult(url, None, f"{type(e).__name__}: {e}")
        if attempt < options.retries:
            time.sleep(delay)
            delay *= 2
    return FetchResult(url, None, f"{error} (after {options.retries + 1} attempts)")


def _download(url: str, options: FetchOptions) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": options.user_agent, "Accept": "image/*"})
    try:
        response = urllib.request.urlopen(request, timeout=options.timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code in _RETRY_STATUS:
            raise
        raise _Permanent(f"HTTP {e.code}") from e
    with response:
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype and not ctype.startswith(_OK_TYPES):
            raise _Permanent(f"not an image (Content-Type {ctype})")
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > options.max_bytes:
            raise _Permanent(f"too large ({int(length)} bytes > {options.max_bytes})")
        chunks, size = [], 0
        while size <= options.max_bytes:
            chunk = response.read(min(1 << 16, options.max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    if len(data) > options.max_bytes:
        raise _Permanent(f"too large (> {options.max_bytes} bytes)")
    if length and length.isdigit() and len(data) < int(length):
        raise http.client.IncompleteRead(data, int(length) - len(data))
    if image_extension(data[:16]) is None:
        raise _Permanent("not an image (unknown magic bytes)")
    return data


def _describe(e: Exception) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code}"
    if isinstance(e, (socket.timeout, TimeoutError)) or "timed out" in str(e):
        return "timed out"
    if isinstance(e, http.client.IncompleteRead):
        return f"truncated response ({len(e.partial)} bytes, {e.expected} missing)"
    if isinstance(e, urllib.error.URLError):
        return f"connection failed: {e.reason}"
    return f"{type(e).__name__}: {e}"
