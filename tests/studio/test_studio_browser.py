"""End to end in a real headless Chromium: open the studio, generate two candidates with a tiny
model, typeset one, download the PDF; the Runs and Compare pages draw what the API gives."""

from __future__ import annotations

import pytest

from studio.browser_flow import browser_page, chromium_path, compare, download_pdf, generate, runs_page, serve, typeset_first

pytest.importorskip("playwright", reason="Playwright for Python is not installed (pip install -e '.[test]')")
if chromium_path() is None:
    pytest.skip("no Chromium: scripts/setup.sh installs Debian's `chromium` when apt-get is available and it runs as root",
                allow_module_level=True)


@pytest.mark.slow
def test_generate_two_candidates_typeset_one_and_download_the_pdf(studio_workspace, tmp_path):
    with serve(studio_workspace) as base, browser_page(base) as page:
        cards = generate(page, base, "The Salt Road", "Mara Ellison", "fantasy", seeds="0..1", steps=2)
        assert [c.get_attribute("data-seed") for c in cards] == ["0", "1"]
        assert all(c.query_selector("img").evaluate("img => img.complete && img.naturalWidth > 0") for c in cards)
        page.screenshot(path=tmp_path / "generate.png")

        typeset_first(page, font="source-sans-bold")
        assert page.input_value("#title") == "The Salt Road" and page.input_value("#author") == "Mara Ellison"
        assert page.input_value("#font") == "source-sans-bold"
        summary = page.inner_text("#cover-summary")
        assert "1600 × 2560 px" in summary and "title in Source Sans Pro Bold, author in Source Sans Pro Bold" in summary
        # The sample line is drawn in the picked face, loaded from the studio.
        loaded = page.evaluate("""async () => (await document.fonts.load('700 16px "studio-source-sans-bold"')).map((f) => f.status)""")
        assert loaded == ["loaded"]
        pdf = download_pdf(page)
        assert pdf.startswith(b"%PDF") and len(pdf) > 10_000

        runs_page(page, base, "runs/colours")
        assert page.inner_text("#detail-status") == "finished"
        assert page.locator("#detail-samples img").count() == 1

        assert compare(page, base, seeds="0", steps=2) == 3  # the run's final weights and its two checkpoints
        assert page.locator("table.compare th").all_text_contents()[2:] == ["runs/colours (final)", "runs/colours @ step 2", "runs/colours @ step 4"]

        assert page.errors == []  # no script error, no refused resource (CSP) on any page
        assert page.hosts == {base.split("/")[2]}  # nothing fetched from anywhere but the studio


@pytest.mark.slow
def test_bad_input_shows_a_message_on_the_page(studio_workspace):
    with serve(studio_workspace) as base, browser_page(base) as page:
        page.goto(f"{base}/generate")
        page.wait_for_load_state("networkidle")
        page.click("#tab-typed")
        page.fill("#book-title", "T")
        page.fill("#seeds", "many")
        page.click("#generate-btn")
        page.wait_for_selector("#flash:not([hidden])")
        assert page.inner_text("#flash") == "seeds 'many' must look like 0..3 or 0,5,9"
