"""The studio serves only the workspace, only to whom it should, and only images of sane size."""

from __future__ import annotations

import io
import os

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from coverforge.studio.app import create_app
from coverforge.studio.server import access


@pytest.fixture()
def small_ws(tmp_path):
    """A workspace beside a secret it must never serve."""
    (tmp_path / "secret.txt").write_text("outside")
    ws = tmp_path / "ws"
    (ws / "runs").mkdir(parents=True)
    (ws / "runs" / "note.txt").write_text("inside")
    os.symlink(tmp_path / "secret.txt", ws / "runs" / "escape.txt")
    os.symlink(tmp_path, ws / "up")
    os.symlink(ws / "runs" / "note.txt", ws / "inside-link.txt")
    return ws


@pytest.fixture()
def local(small_ws):
    with TestClient(create_app(small_ws), base_url="http://127.0.0.1") as c:
        yield c


def test_files_inside_the_workspace_are_served(local):
    r = local.get("/files/runs/note.txt")
    assert r.status_code == 200 and r.text == "inside"
    assert local.get("/files/inside-link.txt").text == "inside"  # a link that stays inside is fine
    assert local.get("/files/runs/missing.png").status_code == 404


@pytest.mark.parametrize("path", [
    "/files/%2E%2E/secret.txt",                  # ../ encoded so that the client does not fold it away
    "/files/runs/%2E%2E/%2E%2E/secret.txt",
    "/files/runs/..%2F..%2Fsecret.txt",
    "/files//etc/passwd",                        # absolute
    "/files/runs/escape.txt",                    # symlink to a file outside
    "/files/up/secret.txt",                      # symlinked folder leading outside
])
def test_paths_leaving_the_workspace_are_refused(local, path):
    r = local.get(path)
    assert r.status_code == 403 and "outside" not in r.text.replace("outside the workspace", "")
    assert r.json()["error"].endswith(("is outside the workspace", "must be relative to the workspace"))


def test_api_paths_are_held_to_the_workspace_too(local):
    for body in ({"art": "../secret.txt", "title": "T"}, {"art": "up/secret.txt", "title": "T"}, {"art": "/etc/passwd", "title": "T"}):
        assert local.post("/api/covers", json=body).status_code == 403
    assert local.get("/api/books", params={"source": "../"}).status_code == 403


def test_html_files_are_sandboxed(local, small_ws):
    (small_ws / "runs" / "report.html").write_text("<script>fetch('/api/jobs')</script>")
    r = local.get("/files/runs/report.html")
    assert r.headers["content-security-policy"].startswith("sandbox") and r.headers["x-content-type-options"] == "nosniff"


def test_uploads_are_checked_for_size_pixels_and_format(local, small_ws, monkeypatch):
    from coverforge.studio import typesetting

    def png(size):
        buf = io.BytesIO()
        Image.new("RGB", size, (10, 20, 30)).save(buf, "PNG")
        return buf.getvalue()

    ok = local.post("/api/uploads", content=png((40, 60)), headers={"content-type": "image/png"})
    assert ok.status_code == 200 and (small_ws / ok.json()["path"]).is_file() and ok.json()["path"].startswith("studio/uploads/")
    bad = local.post("/api/uploads", content=b"GIF89a not really", headers={"content-type": "image/gif"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("the upload is not a readable image")
    assert local.post("/api/uploads", content=b"").json()["error"].startswith("the upload is empty")
    monkeypatch.setattr(typesetting, "MAX_UPLOAD_PIXELS", 1000)
    r = local.post("/api/uploads", content=png((40, 60)))
    assert r.status_code == 400 and "40x60 pixels" in r.json()["error"]
    monkeypatch.setattr(typesetting, "MAX_UPLOAD_BYTES", 100)
    r = local.post("/api/uploads", content=png((40, 60)))
    assert r.status_code == 400 and r.json()["error"].endswith("the studio takes images up to 100 bytes")

    def chunks():  # no Content-Length: the limit is counted while the body streams in
        yield b"x" * 80
        yield b"x" * 80

    r = local.post("/api/uploads", content=chunks())
    assert r.status_code == 400 and "larger than" in r.json()["error"]


def test_loopback_studio_answers_only_loopback_host_names(small_ws):
    with TestClient(create_app(small_ws), base_url="http://localhost") as c:
        assert c.get("/api/jobs").status_code == 200
    with TestClient(create_app(small_ws), base_url="http://attacker.example") as c:  # DNS rebinding
        r = c.get("/api/jobs")
        assert r.status_code == 400 and "attacker.example" in r.json()["error"]


def test_changes_from_another_origin_are_refused(local):
    r = local.post("/api/uploads", content=b"x", headers={"origin": "http://attacker.example"})
    assert r.status_code == 403
    assert local.post("/api/uploads", content=b"", headers={"origin": "http://127.0.0.1"}).status_code == 400  # own origin: goes on


def test_a_token_is_needed_on_every_request_when_bound_beyond_loopback(small_ws):
    token, hosts = access("0.0.0.0", None)
    assert token and len(token) >= 24 and hosts is None
    assert access("127.0.0.1", None) == (None, ("localhost", "127.0.0.1", "::1"))
    assert access("::1", None)[0] is None and access("192.168.1.5", "given")[0] == "given"
    with TestClient(create_app(small_ws, token, hosts), base_url="http://192.168.1.5:7860") as c:
        for path in ("/", "/api/runs", "/files/runs/note.txt", "/static/studio.js"):
            assert c.get(path).status_code == 401
        assert c.get("/api/runs", headers={"x-studio-token": "wrong"}).status_code == 401
        assert c.get("/api/runs", headers={"x-studio-token": token}).status_code == 200
        assert c.get("/api/runs", headers={"authorization": f"Bearer {token}"}).status_code == 200
        first = c.get("/", params={"token": token})  # the printed URL: the browser keeps it as a cookie
        assert first.status_code == 200 and "httponly" in first.headers["set-cookie"].lower()
        assert c.get("/files/runs/note.txt").text == "inside"  # the cookie now goes with every request


def test_cli_refuses_a_workspace_that_is_not_a_folder(tmp_path, capsys):
    from coverforge.cli.main import main

    assert main(["studio", "--workspace", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
