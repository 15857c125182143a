"""Drive the studio in a real headless Chromium (Debian's `chromium`, through Playwright): the
flow the end-to-end test checks, and the README's screenshots.

    python tests/studio/browser_flow.py --workspace WS --out docs/studio [--run runs/demo/run]

The browser is the system's; `playwright install` (which downloads one) is never needed.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import threading
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 900}
SLOW_MS = 240_000  # generation on two busy CPU cores


def chromium_path() -> str | None:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(workspace: Path):
    """The studio under uvicorn on 127.0.0.1 at a free port, in a thread; yields its base URL."""
    import uvicorn

    from coverforge.studio.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(workspace), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the studio did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)


@contextlib.contextmanager
def browser_page(base: str):
    """A page that records console errors and every host it talks to."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        page = context.new_page()
        page.errors, page.hosts = [], set()
        page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("request", lambda r: page.hosts.add(r.url.split("/")[2]))
        try:
            yield page
        finally:
            browser.close()


def generate(page, base: str, title: str, author: str, genres: str, seeds: str = "0..1", steps: int | None = None, model: str | None = None) -> list:
    """Generate candidates for a typed book; returns the candidate cards once all have arrived."""
    page.goto(f"{base}/generate")
    page.wait_for_selector("#model-path option[value]:not([value=''])", state="attached")
    if model:
        page.select_option("#model-path", model)
    page.wait_for_load_state("networkidle")
    page.click("#tab-typed")
    page.fill("#book-title", title)
    page.fill("#book-author", author)
    page.fill("#book-genres", genres)
    page.fill("#seeds", seeds)
    if steps:
        page.fill("#steps", str(steps))
    page.click("#generate-btn")
    page.wait_for_selector("#gen-status:has-text('done')", timeout=SLOW_MS)
    return page.query_selector_all(".card")


def wait_until(page, expression: str, timeout_s: float = 60.0) -> None:
    """Poll a JavaScript expression from here. Playwright's wait_for_function compiles a string
    predicate in the page when it has to poll, which the studio's CSP (no 'unsafe-eval') refuses."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout_s:.0f} s: {expression}")
        time.sleep(0.1)


def typeset_first(page, font: str | None = None) -> None:
    """From the first candidate to a typeset cover with its proof; `font`: a bundled font's name
    picked for title and author (else the layout's faces)."""
    page.click(".card button:has-text('Make cover')")
    page.wait_for_url("**/cover?**")
    wait_until(page, "document.querySelector('#art-select').value !== ''")
    if font:
        page.wait_for_selector(f"#font option[value='{font}']", state="attached")
        page.select_option("#font", font)
        page.wait_for_selector("#font-sample:not([hidden])")
    page.click("#typeset-btn")
    page.wait_for_selector("#proof:not([hidden])", timeout=SLOW_MS)
    wait_until(page, "document.querySelector('#proof').complete && document.querySelector('#proof').naturalWidth > 0")


def download_pdf(page) -> bytes:
    with page.expect_download() as info:
        page.click("#download-pdf")
    return Path(info.value.path()).read_bytes()


def runs_page(page, base: str, run: str | None = None) -> None:
    page.goto(f"{base}/runs")
    page.wait_for_selector("#runs-body tr[data-run]")
    if run:
        page.click(f"#runs-body tr[data-run='{run}']")
    page.wait_for_selector("#loss-curve polyline.smooth", state="attached")
    page.wait_for_load_state("networkidle")


def compare(page, base: str, seeds: str = "0", steps: int | None = None, books: int = 1) -> int:
    """Compare the ticked models on the first `books` books; returns how many images arrived."""
    page.goto(f"{base}/compare")
    page.wait_for_selector("#book-list input", state="attached")
    for box in page.query_selector_all("#book-list input")[1:books]:
        box.check()
    page.fill("#seeds", seeds)
    if steps:
        page.fill("#steps", str(steps))
    page.click("#compare-btn")
    page.wait_for_selector("#cmp-status:has-text('done')", timeout=SLOW_MS)
    return len(page.query_selector_all("table.compare img"))


def small_png(path: Path) -> None:
    """Rewrite a screenshot as a 256-colour optimised PNG: a page of flat UI loses nothing a
    reader sees, and the README's pictures stay a fraction of the size."""
    from PIL import Image

    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def screenshots(workspace: Path, out: Path, run: str | None, title: str, author: str, genres: str, font: str | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with serve(workspace) as base, browser_page(base) as page:
        generate(page, base, title, author, genres, seeds="0..7")
        page.screenshot(path=out / "generate.png", full_page=True)
        typeset_first(page, font)
        page.screenshot(path=out / "cover.png", full_page=True)
        compare(page, base, seeds="0", books=3)
        page.screenshot(path=out / "compare.png", full_page=True)
        runs_page(page, base, run)  # last: its list of recent jobs shows the ones above
        page.screenshot(path=out / "runs.png", full_page=True)
        if page.errors:
            raise SystemExit(f"console errors: {page.errors}")
    for name in ("runs", "generate", "cover", "compare"):
        small_png(out / f"{name}.png")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("docs/studio"))
    ap.add_argument("--run", help="run folder to show on the Runs page")
    ap.add_argument("--title", default="The Salt Road")
    ap.add_argument("--author", default="Mara Ellison")
    ap.add_argument("--genres", default="fantasy")
    ap.add_argument("--font", default="source-sans-bold", help="bundled font picked on the Cover page ('' for the layout's)")
    a = ap.parse_args()
    screenshots(a.workspace, a.out, a.run, a.title, a.author, a.genres, a.font or None)
