"""How `prepare` turned catalogue rows into prompts, kept in the dataset folder so that `generate
--catalogue` rebuilds exactly the text the model was trained on.

The recipe is what shapes the prompt text: the template (stored in full, so a later change of
coverforge's default template does not change an existing dataset's prompts), the column map
that says which CSV column holds each field, and the genre cap.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from coverforge.data.catalogue import FIELDS, read_catalogue
from coverforge.data.layout import PROMPT_RECIPE
from coverforge.data.prompts import DEFAULT_TEMPLATE, build_prompt, check_template
from coverforge.data.text_files import read_text
from coverforge.errors import CoverforgeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromptRecipe:
    template: str = DEFAULT_TEMPLATE
    """str.format template over title, authors, author, publisher, genres, description."""
    columns: dict[str, str] = field(default_factory=dict)
    """Our field -> CSV column, on top of the Goodreads defaults (as `prepare --columns` gave it)."""
    max_genres: int = 8

    def prompt(self, book: dict) -> str:
        return build_prompt(book, self.template, self.max_genres)


def write_recipe(dataset: str | Path, recipe: PromptRecipe | None) -> None:
    """Record the recipe in the dataset folder; None (captions from an image folder) removes a stale one."""
    path = Path(dataset) / PROMPT_RECIPE
    if recipe is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(PROMPT_RECIPE + ".tmp")
    tmp.write_text(json.dumps(asdict(recipe), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_recipe(dataset: str | Path) -> PromptRecipe | None:
    """The dataset's recipe; None if it has none (prepared from an image folder, or before it was recorded)."""
    path = Path(dataset) / PROMPT_RECIPE
    if not path.is_file():
        return None
    try:
        saved = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise CoverforgeError(f"{path}: not valid JSON ({e.msg}); delete it and run `coverforge prepare` again") from None
    template, columns, max_genres = (saved.get(k) if isinstance(saved, dict) else None for k in ("template", "columns", "max_genres"))
    if not (isinstance(template, str) and isinstance(columns, dict) and isinstance(max_genres, int) and max_genres >= 1
            and all(isinstance(k, str) and k in FIELDS and isinstance(v, str) for k, v in columns.items())):
        raise CoverforgeError(f"{path} needs a template string, a columns map of field -> column name and max_genres >= 1; "
                              f"delete it and run `coverforge prepare` again")
    check_template(template)
    return PromptRecipe(template, columns, max_genres)


def recipe_for(dataset: str | Path | None, named_by: str) -> PromptRecipe:
    """The recipe of `dataset` (named by `named_by`, e.g. "--dataset"); the default one, with a
    warning, when there is no dataset or it has no recipe: prompts may then differ from training's."""
    fallback = "--catalogue prompts use the default template and columns, which may not be the ones the model was trained with"
    if not dataset:
        log.warning("no dataset folder known: %s; pass --dataset (the folder `coverforge prepare` wrote)", fallback)
        return PromptRecipe()
    if not Path(dataset).is_dir():
        if named_by == "--dataset":
            raise CoverforgeError(f"--dataset {dataset} is not a folder; give the folder `coverforge prepare` wrote")
        log.warning("dataset %s (%s) is not here: %s; pass --dataset", dataset, named_by, fallback)
        return PromptRecipe()
    recipe = read_recipe(dataset)
    if recipe is None:
        log.warning("dataset %s has no %s (prepared from an image folder or by an older coverforge): %s",
                    dataset, PROMPT_RECIPE, fallback)
        return PromptRecipe()
    return recipe


def catalogue_prompts(csv_path: str | Path, recipe: PromptRecipe) -> tuple[list[dict], list[str]]:
    """Each catalogue row as a book (title, authors, publisher, genres, description) and its prompt."""
    found, _ = read_catalogue(csv_path, recipe.columns)
    books = [{"title": b.title, "authors": b.authors, "publisher": b.publisher, "genres": b.genres, "description": b.description}
             for b in found]
    return books, [recipe.prompt(b) for b in books]
