"""Books to make covers for: rows of a prepared dataset, rows of a catalogue CSV, or a book typed
into the page. Each comes with the prompt the model was trained on: a dataset row's own text, or
the book's fields through the prompt recipe `prepare` recorded (template, column map, genre cap;
`data.prompt_recipe`, as `coverforge generate --catalogue` uses it). The recipe is the dataset's
own for its rows, and for a catalogue or a typed book the one of the dataset the chosen run was
trained on (its config's data.dataset); without one, the default template and columns.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

from coverforge.data.prompt_recipe import PromptRecipe, catalogue_prompts, read_recipe, recipe_for
from coverforge.errors import CoverforgeError
from coverforge.studio.workspace import Workspace

MAX_FIELD_CHARS = {"title": 300, "author": 300, "genres": 300, "blurb": 6000}


def _book(title: str, authors: list[str], genres: list[str], description: str, prompt: str, index: int | None = None) -> dict:
    return {"index": index, "title": title, "authors": authors, "author": ", ".join(authors), "genres": genres,
            "description": description, "prompt": prompt}


def run_dataset(ws: Workspace, run: Path) -> Path | None:
    """The dataset folder a run (or a checkpoint's run) was trained on, as its config names it;
    relative names are the workspace's (the studio trains with the workspace as working folder)."""
    from coverforge.config import load_config
    from coverforge.run_folder import RunFolder

    folder = RunFolder(run)
    owner = RunFolder(run.parent.parent)  # runs/x/checkpoints/step-N: the run's config, as training resolved it
    if owner.is_run() and run.parent == owner.checkpoints:
        folder = owner
    if not folder.is_run():
        return None
    try:
        dataset = load_config(folder.config).data.dataset
    except CoverforgeError:
        return None
    return (ws.root / dataset) if dataset else None


@lru_cache(maxsize=32)
def _recipe_of(dataset: str, named_by: str, mtime: float) -> PromptRecipe:
    return recipe_for(dataset, named_by)  # warns (once per recipe file state) when there is none


def recipe_of(dataset: Path | None, named_by: str) -> tuple[PromptRecipe, str]:
    """The recipe of `dataset` and a line for the page saying where the prompts' recipe came from."""
    if dataset is None:
        return PromptRecipe(), "prompts use the default template and columns (no dataset known: pick a run to use its dataset's)"
    from coverforge.data.layout import PROMPT_RECIPE

    if not dataset.is_dir():
        recipe_for(str(dataset), named_by)  # its warning, for the log
        return PromptRecipe(), f"prompts use the default template and columns: the dataset {dataset.name} ({named_by}) is not here"
    file = dataset / PROMPT_RECIPE
    recipe = _recipe_of(str(dataset), named_by, file.stat().st_mtime if file.is_file() else 0.0)
    if file.is_file():
        return recipe, f"prompts built as for training: the recipe recorded in {dataset.name}/{PROMPT_RECIPE}"
    return recipe, f"prompts use the default template and columns: {dataset.name} has no {PROMPT_RECIPE}"


def _split_recipe(split: Path) -> PromptRecipe:
    """A dataset split's recipe: recorded beside the splits; default when there is none."""
    for folder in (split.parent, split):
        recipe = read_recipe(folder)
        if recipe is not None:
            return recipe
    return PromptRecipe()


@lru_cache(maxsize=8)
def _read_source(path: str, mtime: float, recipe_json: str) -> tuple[dict, ...]:
    source = Path(path)
    if source.is_dir():
        from coverforge.data.layout import read_metadata

        recipe = _split_recipe(source)
        rows = read_metadata(source, require_text=False)
        return tuple(
            _book(r.get("title") or Path(r["file_name"]).stem, list(r.get("authors") or []), list(r.get("genres") or []),
                  r.get("description") or "", r.get("text") or recipe.prompt(r), i)
            for i, r in enumerate(rows)
        )
    recipe = PromptRecipe(**json.loads(recipe_json))
    found, prompts = catalogue_prompts(source, recipe)
    # The index is the CSV's data row: the same book under any column map (Compare reads one
    # catalogue with each model's recipe).
    from coverforge.data.catalogue import read_catalogue

    rows = [b.source_row for b in read_catalogue(source, recipe.columns)[0]]
    return tuple(_book(b["title"], list(b["authors"]), list(b["genres"]), b["description"], prompt, row)
                 for b, prompt, row in zip(found, prompts, rows))


def read_books(source: Path, recipe: PromptRecipe | None = None) -> list[dict]:
    """Every book of a dataset split folder (metadata.jsonl; its rows' text, else its own recipe)
    or a catalogue CSV (read and prompted with `recipe`, default: the default template and columns)."""
    if not (source.is_dir() and (source / "metadata.jsonl").is_file()) and source.suffix.lower() != ".csv":
        raise CoverforgeError(f"book source {source.name}: give a dataset split folder (with metadata.jsonl) or a catalogue .csv")
    recipe_json = json.dumps(asdict(recipe or PromptRecipe()), sort_keys=True)
    return list(_read_source(str(source), source.stat().st_mtime, recipe_json))


def pick_books(source: Path, indices: list[int], recipe: PromptRecipe | None = None) -> list[dict]:
    books = {b["index"]: b for b in read_books(source, recipe)}
    for i in indices:
        if i not in books:
            raise CoverforgeError(f"book {i} is not in {source.name} ({len(books)} books)")
    return [books[i] for i in indices]


def typed_book(title: str, author: str = "", genres: str = "", blurb: str = "", recipe: PromptRecipe | None = None) -> dict:
    """A book from the page's fields; genres comma-separated; the prompt through `recipe`'s template."""
    values = {"title": title, "author": author, "genres": genres, "blurb": blurb}
    for name, value in values.items():
        if len(value) > MAX_FIELD_CHARS[name]:
            raise CoverforgeError(f"{name} is {len(value)} characters long: keep it under {MAX_FIELD_CHARS[name]}")
    if not title.strip():
        raise CoverforgeError("title is empty: type the book's title or pick a book")
    authors = [" ".join(author.split())] if author.strip() else []  # as typed: "Tolkien, J. R. R." is one author
    genre_list = [g.strip() for g in genres.split(",") if g.strip()]
    prompt = (recipe or PromptRecipe()).prompt({"title": title, "authors": authors, "genres": genre_list, "description": blurb})
    return _book(" ".join(title.split()), authors, genre_list, blurb.strip(), prompt)
