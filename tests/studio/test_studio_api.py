"""The studio's JSON API on tiny models: what each page asks for and gets."""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image


def test_pages_render_and_load_nothing_from_outside(client):
    for page in ("/", "/runs", "/generate", "/cover", "/compare"):
        r = client.get(page)
        assert r.status_code == 200 and "coverforge" in r.text
        # Every script, style and font is the studio's own: no CDN, nothing inline.
        assert not re.search(r"(src|href)=\"(https?:)?//", r.text)
        assert "<script>" not in r.text and "style=" not in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "classic: Source Serif Bold" in client.get("/cover").text  # each layout says its typefaces
    assert client.get("/static/studio.js").status_code == 200
    assert client.get("/fonts/SourceSansPro-Regular.ttf").content[:4] == b"\x00\x01\x00\x00"


def test_runs_lists_the_finished_run_with_curve_checkpoints_and_grids(client):
    runs = client.get("/api/runs").json()["runs"]
    (run,) = [r for r in runs if r["path"] == "runs/colours"]
    assert run["status"] == "finished" and run["step"] == 4 and run["max_steps"] == 4 and run["recipe"] == "lora"
    assert [c["step"] for c in run["checkpoints"]] == [2, 4]
    detail = client.get("/api/run", params={"path": "runs/colours"}).json()
    assert [p[0] for p in detail["curve"]] == [1, 2, 3, 4] and all(p[1] > 0 for p in detail["curve"])
    assert detail["samples"] == ["runs/colours/samples/step-00000004.png"]
    assert client.get(f"/files/{detail['samples'][0]}").headers["content-type"] == "image/png"
    assert detail["sample"]["steps"] == 2  # the Generate page starts from the run's own settings


def test_models_books_and_configs_are_found_in_the_workspace(client):
    models = client.get("/api/models").json()
    assert models["models"] == ["models/tiny-sd15", "models/tiny-sd2"]
    assert [(r["path"], r["finished"], len(r["checkpoints"])) for r in models["runs"]] == [("runs/colours", True, 2)]
    sources = {s["path"]: s["kind"] for s in client.get("/api/book-sources").json()["sources"]}
    assert sources["catalogue/spring.csv"] == "catalogue" and sources["data/colours/validation"] == "dataset"
    found = client.get("/api/books", params={"source": "catalogue/spring.csv", "q": "salt"}).json()
    assert found["total"] == 1 and found["books"][0]["author"] == "Mara Ellison"
    assert found["books"][0]["prompt"].startswith('Book cover. Title: "The Salt Road". Author: Mara Ellison.')
    (config,) = client.get("/api/configs").json()["configs"]
    assert config["fields"]["train.max_steps"] == 4 and config["fields"]["model.path"] == "models/tiny-sd15"


def test_generate_makes_one_candidate_per_book_and_seed_with_its_parameters(client, wait_for, studio_workspace):
    r = client.post("/api/generate", json={"model": {"kind": "run", "path": "runs/colours"}, "source": "catalogue/spring.csv",
                                           "books": [0, 1], "seeds": "3,7", "steps": 2, "guidance": 4, "aspect": "2:3"})
    assert r.status_code == 200, r.text
    job = wait_for(client, r.json())
    assert job["status"] == "done" and job["done"] == job["total"] == 4
    assert [(c["title"], c["seed"]) for c in job["results"]] == [("The Salt Road", 3), ("The Salt Road", 7), ("Night Ferry", 3), ("Night Ferry", 7)]
    first = job["results"][0]
    assert first["height"] > first["width"]  # 2:3 at the model's pixel area
    assert first["stray_text"]["found"] is False  # OCR finds no lettering in a tiny model's noise
    with Image.open(studio_workspace / first["path"]) as im:
        params = json.loads(im.text["coverforge"])
    assert params["seed"] == 3 and params["steps"] == 2 and params["guidance_scale"] == 4 and "The Salt Road" in params["prompt"]
    # The same seed again gives the same image: candidates can be found again from their seed.
    again = wait_for(client, client.post("/api/generate", json={"model": {"kind": "run", "path": "runs/colours"}, "source": "catalogue/spring.csv",
                                                                  "books": [0], "seeds": "3", "steps": 2, "guidance": 4, "aspect": "2:3"}).json())
    a, b = (Image.open(studio_workspace / c["path"]).tobytes() for c in (first, again["results"][0]))
    assert a == b


def test_candidates_are_found_again_after_a_restart(client, wait_for, studio_workspace):
    from fastapi.testclient import TestClient

    from coverforge.studio.app import create_app

    job = wait_for(client, client.post("/api/generate", json={"model": {"kind": "model", "path": "models/tiny-sd15"},
                                                                "book": {"title": "Night Ferry"}, "seeds": "4", "steps": 1}).json())
    with TestClient(create_app(studio_workspace), base_url="http://127.0.0.1") as restarted:
        listed = restarted.get("/api/candidates").json()["candidates"]
    assert listed[0] == job["results"][0] and listed[0]["title"] == "Night Ferry" and listed[0]["seed"] == 4


def test_generate_from_a_typed_book_with_a_base_model_and_a_checkpoint(client, wait_for):
    book = {"title": "The Salt Road", "author": "Mara Ellison", "genres": "fantasy", "blurb": "Salt and wind."}
    for model in ({"kind": "model", "path": "models/tiny-sd2"}, {"kind": "checkpoint", "path": "runs/colours/checkpoints/step-00000002"}):
        job = wait_for(client, client.post("/api/generate", json={"model": model, "book": book, "seeds": "0..1", "steps": 2, "aspect": ""}).json())
        assert job["status"] == "done", job["message"]
        assert [c["seed"] for c in job["results"]] == [0, 1] and job["results"][0]["author"] == "Mara Ellison"
        assert job["results"][0]["width"] == job["results"][0]["height"]  # native square


def test_compare_runs_the_same_books_and_seeds_through_every_model(client, wait_for):
    models = [{"kind": "run", "path": "runs/colours"}, {"kind": "checkpoint", "path": "runs/colours/checkpoints/step-00000002"},
              {"kind": "model", "path": "models/tiny-sd15"}]
    r = client.post("/api/compare", json={"models": models, "source": "data/colours/validation", "books": [0, 2], "seeds": "5", "steps": 2})
    job = wait_for(client, r.json())
    assert job["status"] == "done" and job["total"] == 6
    cells = {(c["variant"], c["book"], c["seed"]) for c in job["results"]}
    assert cells == {(v, b, 5) for v in range(3) for b in (0, 1)}
    assert {c["model"] for c in job["results"]} == {"runs/colours", "runs/colours @ 2", "models/tiny-sd15"}


@pytest.mark.parametrize("fmt, extra, size", [
    ("ebook", {}, (1600, 2560)),
    ("print", {"trim": "5x8in"}, (1575, 2475)),  # (5 + 2 x 0.125) x (8 + 2 x 0.125) in at 300 dpi
    ("wrap", {"trim": "5x8in", "pages": 200, "paper": "cream", "back_text": "A caravan.\n\nSalt."}, (round((10.25 + 0.5) * 300), 2475)),
])
def test_cover_typesets_and_writes_png_pdf_and_proof(client, studio_workspace, fmt, extra, size):
    art = Image.new("RGB", (64, 96), (40, 60, 120))
    buf = io.BytesIO()
    art.save(buf, "PNG")
    upload = client.post("/api/uploads", content=buf.getvalue(), headers={"content-type": "image/png"}).json()
    r = client.post("/api/covers", json={"art": upload["path"], "title": "The Salt Road", "author": "Mara Ellison", "format": fmt, **extra})
    assert r.status_code == 200, r.text
    cover = r.json()
    assert (cover["width_px"], cover["height_px"]) == size and cover["contrast"] >= 4.5
    # Read back by OCR as `coverforge cover` does: on flat art every letter of title and author.
    reads = cover["legibility"]
    assert reads["title_reads"] and reads["full"]["title"]["cer"] == 0 and reads["full"]["author"]["cer"] == 0
    if fmt == "wrap":
        assert cover["spine_in"] == 0.5  # 200 pages of cream at 0.0025 in
    pdf = client.get(f"/files/{cover['pdf']}", params={"download": 1})
    assert pdf.content.startswith(b"%PDF") and pdf.headers["content-disposition"] == 'attachment; filename="cover.pdf"'
    with Image.open(studio_workspace / cover["png"]) as im:
        assert im.size == size
    with Image.open(studio_workspace / cover["proof"]) as im:
        assert im.height == 1200


def upload_flat_art(client) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 96), (40, 60, 120)).save(buf, "PNG")
    return client.post("/api/uploads", content=buf.getvalue(), headers={"content-type": "image/png"}).json()["path"]


def test_cover_sets_title_and_author_in_the_chosen_font(client, studio_workspace):
    fonts = client.get("/api/fonts").json()["fonts"]
    assert [f["name"] for f in fonts] == ["source-serif", "source-serif-bold", "source-sans", "source-sans-bold"]
    assert client.get(fonts[3]["url"]).content[:4] == b"\x00\x01\x00\x00"  # the page previews it from the studio
    art = upload_flat_art(client)
    book = {"art": art, "title": "Night Ferry", "author": "Jon Abel", "layout": "classic"}
    default = client.post("/api/covers", json=book).json()
    chosen = client.post("/api/covers", json={**book, "font": "source-sans-bold"}).json()
    assert default["font"] == "" and default["typefaces"] == {"title": "Source Serif Pro Bold", "author": "Source Serif Pro Regular"}
    assert chosen["font"] == "source-sans-bold" and chosen["typefaces"] == {"title": "Source Sans Pro Bold", "author": "Source Sans Pro Bold"}
    assert chosen["layout"] == "classic" and chosen["legibility"]["title_reads"]
    saved = json.loads((studio_workspace / chosen["png"]).with_name("cover.json").read_text())
    assert saved["spec"]["font"] == "source-sans-bold" and saved["typefaces"] == chosen["typefaces"]
    # The downloads are the chosen font's cover, not the default's.
    for kind in ("png", "pdf"):
        assert client.get(f"/files/{chosen[kind]}").content != client.get(f"/files/{default[kind]}").content
    with Image.open(studio_workspace / default["png"]) as a, Image.open(studio_workspace / chosen["png"]) as b:
        assert a.tobytes() != b.tobytes()
    wrap = client.post("/api/covers", json={**book, "font": "source-serif", "format": "wrap", "pages": 300}).json()
    assert wrap["typefaces"]["spine"] == wrap["typefaces"]["title"] == "Source Serif Pro Regular"


@pytest.mark.parametrize("path, body, message", [
    ("/api/generate", {"model": {"kind": "run", "path": "runs/colours"}, "book": {"title": "T"}, "steps": 0}, "steps: Input should be greater than or equal to 1"),
    ("/api/generate", {"model": {"kind": "run", "path": "runs/colours"}, "book": {"title": "T"}, "seeds": "a..b"}, "seeds 'a..b' must look like 0..3"),
    ("/api/generate", {"model": {"kind": "run", "path": "runs/colours"}, "book": {"title": "T"}, "sampler": "fast"}, "sampler 'fast': choose one of euler"),
    ("/api/generate", {"model": {"kind": "run", "path": "runs/colours"}, "book": {"title": "T"}, "aspect": "9:1"}, "aspect '9:1' must look like 2:3"),
    ("/api/generate", {"model": {"kind": "run", "path": "runs/colours"}, "book": {"title": " "}}, "title is empty"),
    ("/api/generate", {"model": {"kind": "run", "path": "runs/colours"}}, "no book: pick one or more books"),
    ("/api/generate", {"model": {"kind": "run", "path": "runs/colours"}, "source": "catalogue/spring.csv", "books": [9]}, "book 9 is not in spring.csv (2 books)"),
    ("/api/generate", {"model": {"kind": "run", "path": "runs/colours"}, "book": {"title": "T"}, "seeds": "0..99"}, "give 1 to 16 seeds"),
    ("/api/generate", {"model": {"kind": "run", "path": "runs/colours"}, "book": {"title": "T"}, "extra": 1}, "extra: Extra inputs are not permitted"),
    ("/api/covers", {"art": "runs/colours/samples/step-00000004.png", "title": "T", "format": "print", "trim": "6 by 9"}, "print trim '6 by 9' is not understood"),
    ("/api/covers", {"art": "runs/colours/samples/step-00000004.png", "title": "T", "layout": "fancy"}, "layout 'fancy' is not known"),
    ("/api/covers", {"art": "runs/colours/samples/step-00000004.png", "title": " "}, "cover title is empty"),
    ("/api/covers", {"art": "runs/colours/samples/step-00000004.png", "title": "T", "font": "papyrus"}, "font 'papyrus' is not a bundled font: use one of"),
    ("/api/covers", {"art": "runs/colours/config.toml", "title": "T"}, "art config.toml is not a readable image"),
    ("/api/covers", {"art": "runs/colours/samples/step-00000004.png", "title": "T", "format": "wrap", "pages": 0}, "pages: Input should be greater than or equal to 1"),
    ("/api/train", {"config": "configs/tiny-lora.toml", "run_name": "../up"}, "run name '../up': use letters, digits"),
    ("/api/train", {"config": "configs/tiny-lora.toml", "run_name": "colours"}, "run runs/colours already exists"),
    ("/api/train", {"config": "configs/tiny-lora.toml", "run_name": "x", "fields": {"train.max_steps": "many"}}, "train.max_steps = 'many' must be a number"),
    ("/api/train", {"config": "configs/tiny-lora.toml", "run_name": "x", "fields": {"train.optimizer": "sgd"}}, "field train.optimizer cannot be set"),
    ("/api/train", {"config": "configs/tiny-lora.toml", "run_name": "x", "fields": {"train.batch_size": -1}}, "train.batch_size = -1 must be"),
])
def test_bad_input_is_a_400_with_one_line(client, path, body, message):
    r = client.post(path, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert message in error and "\n" not in error and "Traceback" not in error


def test_missing_things_are_404_and_internal_errors_one_line_without_traceback(studio_workspace, monkeypatch):
    from fastapi.testclient import TestClient

    from coverforge.studio import typesetting
    from coverforge.studio.app import create_app

    with TestClient(create_app(studio_workspace), base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        r = c.post("/api/generate", json={"model": {"kind": "run", "path": "runs/nope"}, "book": {"title": "T"}})
        assert r.status_code == 404 and r.json()["error"] == "model 'runs/nope' does not exist in the workspace"
        assert c.get("/api/jobs/abc").status_code == 404
        monkeypatch.setattr(typesetting, "make", lambda ws, spec: 1 / 0)
        r = c.post("/api/covers", json={"art": "x.png", "title": "T"})
        assert r.status_code == 500 and r.json() == {"error": "internal error (ZeroDivisionError); the studio's log has the details"}


def test_a_generation_that_fails_in_the_queue_reports_one_line(client, wait_for):
    # A run folder without final weights: refused when the job loads it, not with a traceback.
    r = client.post("/api/generate", json={"model": {"kind": "run", "path": "runs/colours/checkpoints"}, "book": {"title": "T"}, "steps": 1})
    job = wait_for(client, r.json())
    assert job["status"] == "failed" and "has no final weights yet" in job["message"]


def test_stopping_a_queued_generation_stops_it(client, wait_for):
    body = {"model": {"kind": "model", "path": "models/tiny-sd15"}, "book": {"title": "T"}, "seeds": "0..15", "steps": 2}
    first, second = (client.post("/api/generate", json=body).json() for _ in range(2))
    client.post(f"/api/jobs/{second['id']}/stop")
    client.post(f"/api/jobs/{first['id']}/stop")
    first, second = wait_for(client, first), wait_for(client, second)
    assert second["status"] == "stopped" and second["results"] == []
    assert first["status"] == "stopped" and len(first["results"]) < 16
