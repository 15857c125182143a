"""Reports the Runs page lists with a run: inside the run folder, and the demo's beside it."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient

from coverforge.studio.app import create_app


def test_the_demo_report_beside_its_run_is_listed_with_the_run(studio_workspace, tmp_path):
    ws = tmp_path / "ws"
    # `coverforge demo --out demo` writes demo/run/ and demo/report.html.
    shutil.copytree(studio_workspace / "runs" / "colours", ws / "demo" / "run")
    (ws / "demo" / "report.html").write_text("<html><body>demo report</body></html>")
    (ws / "demo" / "run" / "eval").mkdir()
    (ws / "demo" / "run" / "eval" / "report.html").write_text("<html></html>")
    # A second run whose neighbour is a link out of the workspace: not listed.
    shutil.copytree(studio_workspace / "runs" / "colours", ws / "other" / "run")
    (tmp_path / "outside.html").write_text("<html></html>")
    (ws / "other" / "report.html").symlink_to(tmp_path / "outside.html")
    with TestClient(create_app(ws), base_url="http://127.0.0.1") as c:
        runs = {r["path"]: r for r in c.get("/api/runs").json()["runs"]}
        assert runs["demo/run"]["reports"] == ["demo/report.html", "demo/run/eval/report.html"]
        assert runs["other/run"]["reports"] == []
        assert c.get("/api/run", params={"path": "demo/run"}).json()["reports"][0] == "demo/report.html"
        page = c.get("/files/demo/report.html")
        assert page.status_code == 200 and "demo report" in page.text and "sandbox" in page.headers["content-security-policy"]
