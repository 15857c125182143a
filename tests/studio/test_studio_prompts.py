"""Catalogue books in the studio get the prompts their model was trained on: the template and
column map `prepare` recorded in the dataset of the chosen run (as `generate --catalogue` does)."""

from __future__ import annotations

import csv
import json
import re
import shutil

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from coverforge.data.layout import PROMPT_RECIPE
from coverforge.data.prompt_recipe import PromptRecipe, catalogue_prompts, read_recipe, write_recipe
from coverforge.studio.app import create_app

TEMPLATE = "Jacket art for {title}, written by {author}; shelved under {genres}."
COLUMNS = {"title": "Book Name", "authors": "Writer", "genres": "Shelf"}


@pytest.fixture()
def shelf(studio_workspace, tmp_path):
    """The workspace with its run trained on data/colours, whose recorded recipe is not the
    default one, and a catalogue in that recipe's columns."""
    ws = tmp_path / "ws"
    shutil.copytree(studio_workspace, ws, ignore=shutil.ignore_patterns("studio"))
    write_recipe(ws / "data" / "colours", PromptRecipe(TEMPLATE, COLUMNS, 8))
    config = ws / "runs" / "colours" / "config.toml"
    # As a run started from the studio names it: relative to the workspace.
    config.write_text(re.sub(r'(?m)^dataset = ".*"$', 'dataset = "data/colours"', config.read_text()))
    with open(ws / "catalogue" / "autumn.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Book Name", "Writer", "Shelf", "Notes"])
        w.writerow(["The Salt Road", "Mara Ellison", "Fantasy|Adventure", "x"])
        w.writerow(["", "Nobody", "Empty", "a row without a title is skipped"])
        w.writerow(["Night Ferry", "Jon Abel", "Thriller", "y"])
    with TestClient(create_app(ws), base_url="http://127.0.0.1") as c:
        yield ws, c


def test_a_catalogue_is_read_with_the_recipe_of_the_runs_dataset(shelf):
    ws, c = shelf
    books_json, prompts = catalogue_prompts(ws / "catalogue" / "autumn.csv", read_recipe(ws / "data" / "colours"))
    for run in ("runs/colours", "runs/colours/checkpoints/step-00000002"):
        found = c.get("/api/books", params={"source": "catalogue/autumn.csv", "run": run}).json()
        assert [b["title"] for b in found["books"]] == ["The Salt Road", "Night Ferry"]
        assert [b["prompt"] for b in found["books"]] == prompts
        assert found["books"][0]["prompt"] == "Jacket art for The Salt Road, written by Mara Ellison; shelved under Fantasy, Adventure."
        assert [b["index"] for b in found["books"]] == [0, 2]  # the CSV's data rows: the same book under any recipe
        assert PROMPT_RECIPE in found["prompts"]
    # No run chosen: the default columns, which this catalogue does not have.
    r = c.get("/api/books", params={"source": "catalogue/autumn.csv"})
    assert r.status_code == 400 and "no title column" in r.json()["error"]


def test_generate_and_compare_prompt_each_model_as_it_was_trained(shelf, wait_for):
    ws, c = shelf
    body = {"source": "catalogue/autumn.csv", "books": [2], "seeds": "1", "steps": 1, "aspect": ""}
    job = wait_for(c, c.post("/api/generate", json={"model": {"kind": "run", "path": "runs/colours"}, **body}).json())
    assert job["status"] == "done", job["message"]
    expected = "Jacket art for Night Ferry, written by Jon Abel; shelved under Thriller."
    with Image.open(ws / job["results"][0]["path"]) as im:
        assert json.loads(im.text["coverforge"])["prompt"] == expected
    typed = wait_for(c, c.post("/api/generate", json={"model": {"kind": "run", "path": "runs/colours"}, "book": {"title": "Dune", "author": "F. H."},
                                                      "seeds": "1", "steps": 1, "aspect": ""}).json())
    with Image.open(ws / typed["results"][0]["path"]) as im:
        assert json.loads(im.text["coverforge"])["prompt"] == "Jacket art for Dune, written by F. H.; shelved under."  # the template as prepare applies it
    # A base model knows no dataset: beside a run, it is prompted as that run was (like with like).
    models = [{"kind": "model", "path": "models/tiny-sd15"}, {"kind": "run", "path": "runs/colours"}]
    compared = wait_for(c, c.post("/api/compare", json={"models": models, **{k: body[k] for k in ("source", "books", "seeds", "steps")}}).json())
    assert compared["status"] == "done", compared["message"]
    for cell in compared["results"]:
        with Image.open(ws / cell["path"]) as im:
            assert json.loads(im.text["coverforge"])["prompt"] == expected
    # Alone, it has only the default recipe, whose columns this catalogue does not have.
    r = c.post("/api/compare", json={"models": models[:1], **{k: body[k] for k in ("source", "books", "seeds", "steps")}})
    assert r.status_code == 400 and "no title column" in r.json()["error"]


def test_dataset_rows_without_text_are_prompted_with_the_datasets_recipe(shelf):
    ws, c = shelf
    split = ws / "data" / "colours" / "validation"
    rows = [json.loads(line) for line in (split / "metadata.jsonl").read_text().splitlines()]
    (split / "metadata.jsonl").write_text("".join(json.dumps({**{k: v for k, v in r.items() if k != "text"}, "title": f"Book {i}",
                                                              "authors": ["A. Writer"], "genres": ["red"]}) + "\n" for i, r in enumerate(rows)))
    found = c.get("/api/books", params={"source": "data/colours/validation"}).json()
    assert found["books"][1]["prompt"] == "Jacket art for Book 1, written by A. Writer; shelved under red."
