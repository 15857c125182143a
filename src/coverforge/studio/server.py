"""`serve`: run the studio under uvicorn, with a token when it is reachable from other machines."""

from __future__ import annotations

import secrets
from pathlib import Path

from coverforge.studio.security import LOOPBACK_NAMES, is_loopback


def access(host: str, token: str | None) -> tuple[str | None, tuple[str, ...] | None]:
    """(token, allowed Host names): loopback binds answer only loopback names and need no token;
    any other bind needs a token (generated unless given) and accepts any Host name."""
    if is_loopback(host):
        return token, LOOPBACK_NAMES
    return token or secrets.token_urlsafe(24), None


def _check_port(host: str, port: int) -> None:
    """A taken port is one line before uvicorn starts, not a log record after it."""
    import socket

    from coverforge.errors import CoverforgeError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise CoverforgeError(f"cannot listen on {host}:{port}: {e.strerror}; give another --port (or --host)") from None


def serve(workspace: str | Path, host: str = "127.0.0.1", port: int = 7860, token: str | None = None) -> None:
    import uvicorn

    from coverforge.studio.app import create_app

    token, allowed = access(host, token)
    app = create_app(workspace, token, allowed)
    _check_port(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown if allowed is None else '127.0.0.1'}:{port}/"
    print(f"coverforge studio: workspace {Path(workspace).resolve()}")
    print(f"open {url}{'?token=' + token if token else ''}", flush=True)
    if allowed is None:
        print("bound beyond this machine: every request needs the token above", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
