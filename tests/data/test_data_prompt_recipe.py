"""`prepare` records how it built the prompts; `generate --catalogue` rebuilds exactly those (issue 22, item 5)."""

import json
import logging
from pathlib import Path

import pytest
from PIL import Image

import coverforge.sampling.batch
from coverforge.cli.main import main
from coverforge.config import config_from_dict, to_toml
from coverforge.data.layout import PROMPT_RECIPE, SPLITS, load_records
from coverforge.data.prepare import PrepareOptions, prepare_folder
from coverforge.data.prompt_recipe import PromptRecipe, read_recipe
from coverforge.data.prompts import build_prompt
from coverforge.errors import CoverforgeError
from coverforge.run_folder import RunFolder
from data_builders import GOODREADS_HEADER, goodreads_row, save_cover, write_csv

# Not the Goodreads header, so only the column map prepare was given can read it.
HEADER = ["Name", "Writer", "Kind", "Blurb", "Cover"]
COLUMNS = "title=Name,authors=Writer,genres=Kind,description=Blurb,image=Cover"
TEMPLATE = "{genres} cover art for {title}, a book by {author}. {description}"
BOOKS = [
    ["The Salt Road", "Mara Quill", "Fantasy|Adventure", "A caravan crosses the desert."],
    ["Quiet Harbour", "Ivo Lind; Sam Reyes", "Romance", "Two lighthouse keepers."],
    ["Cold Signal", "Dee Okafor", "Science Fiction|Thriller|Space", "A message from the ice moon."],
    ["Paper Lanterns", "Hana Mori", "Mystery", "Who lit the last lantern?"],
]


@pytest.fixture
def custom_catalogue(tmp_path) -> tuple[Path, Path]:
    covers = tmp_path / "covers"
    for i in range(len(BOOKS)):
        save_cover(covers / f"cover-{i}.png", 96, 144, seed=i)
    rows = [book + [f"cover-{i}.png"] for i, book in enumerate(BOOKS)]
    return write_csv(tmp_path / "shop.csv", HEADER, rows), covers


def _prepare(csv_path: Path, covers: Path, out: Path, template_file: Path | None = None) -> dict[str, str]:
    """Run `coverforge prepare` with the column map; title -> training prompt of every kept book."""
    extra = ["--template", str(template_file)] if template_file else []
    assert main(["prepare", str(csv_path), "--out", str(out), "--images", str(covers), "--columns", COLUMNS,
                 "--min-size", "64", "--val-fraction", "0.25", *extra]) == 0
    rows = [row for split in SPLITS for row in load_records(out, split)]
    assert len(rows) == len(BOOKS)
    return {row["title"]: row["text"] for row in rows}


def _capture_prompts(monkeypatch) -> list[list[str]]:
    """Stand-in for the model: `generate` hands its request over and we keep the prompts."""
    seen = []

    def fake_run_generation(request, out, **kwargs):
        seen.append(list(request.prompts))
        return []

    monkeypatch.setattr(coverforge.sampling.batch, "run_generation", fake_run_generation)
    return seen


def test_generate_catalogue_draws_with_the_training_prompts(custom_catalogue, tiny_models, tmp_path):
    csv_path, covers = custom_catalogue
    template_file = tmp_path / "template.txt"
    template_file.write_text(TEMPLATE)
    trained = _prepare(csv_path, covers, tmp_path / "ds", template_file)
    assert trained["Cold Signal"] == "Science Fiction, Thriller, Space cover art for Cold Signal, a book by Dee Okafor. A message from the ice moon."

    out = tmp_path / "gen"
    assert main(["generate", "--model", str(tiny_models["sd15"]), "--catalogue", str(csv_path), "--dataset", str(tmp_path / "ds"),
                 "--steps", "1", "--width", "64", "--height", "64", "--batch-size", "4", "--out", str(out)]) == 0
    drawn = [json.loads(Image.open(p).text["coverforge"])["prompt"] for p in sorted(out.glob("0*.png"))]
    assert drawn == [trained[book[0]] for book in BOOKS]


def test_the_run_config_names_the_dataset(custom_catalogue, tmp_path, monkeypatch):
    csv_path, covers = custom_catalogue
    template_file = tmp_path / "template.txt"
    template_file.write_text(TEMPLATE)
    trained = _prepare(csv_path, covers, tmp_path / "ds", template_file)
    run = RunFolder(tmp_path / "run")
    run.final.mkdir(parents=True)
    run.config.write_text(to_toml(config_from_dict({"model": {"path": "unused"}, "data": {"dataset": str(tmp_path / "ds")}})))
    seen = _capture_prompts(monkeypatch)
    assert main(["generate", "--run", str(run.root), "--catalogue", str(csv_path), "--out", str(tmp_path / "gen")]) == 0
    assert seen == [[trained[book[0]] for book in BOOKS]]


def test_a_coverforge_lora_names_its_dataset_in_its_metadata(custom_catalogue, tiny_models, tmp_path, monkeypatch):
    """generate --model M --lora F: the training config coverforge writes into the LoRA's metadata names the dataset."""
    import torch
    from safetensors.torch import save_file

    csv_path, covers = custom_catalogue
    template_file = tmp_path / "template.txt"
    template_file.write_text(TEMPLATE)
    trained = _prepare(csv_path, covers, tmp_path / "ds", template_file)
    lora = tmp_path / "lora.safetensors"
    config = to_toml(config_from_dict({"model": {"path": "unused"}, "data": {"dataset": str(tmp_path / "ds")}}))
    save_file({"unused": torch.zeros(1)}, str(lora), metadata={"format": "pt", "coverforge_config": config})
    seen = _capture_prompts(monkeypatch)
    assert main(["generate", "--model", str(tiny_models["sd15"]), "--lora", str(lora), "--catalogue", str(csv_path),
                 "--out", str(tmp_path / "gen")]) == 0
    assert seen == [[trained[book[0]] for book in BOOKS]]


def test_a_dataset_without_the_record_keeps_the_default_prompts_with_a_warning(tmp_path, monkeypatch, caplog):
    covers = tmp_path / "covers" / "images" / "images"
    for i in range(4):
        save_cover(covers / f"{i}.jpg", 96, 144, seed=i)
    csv_path = write_csv(tmp_path / "book_data.csv", GOODREADS_HEADER, [goodreads_row(f"Book {i}") for i in range(4)])
    assert main(["prepare", str(csv_path), "--out", str(tmp_path / "ds"), "--images", str(tmp_path / "covers"), "--min-size", "64"]) == 0
    assert read_recipe(tmp_path / "ds") == PromptRecipe()  # a default prepare records the default recipe
    (tmp_path / "ds" / PROMPT_RECIPE).unlink()  # as a dataset prepared before the record existed
    seen = _capture_prompts(monkeypatch)
    with caplog.at_level(logging.WARNING):
        assert main(["generate", "--model", "unused", "--catalogue", str(csv_path), "--dataset", str(tmp_path / "ds"),
                     "--out", str(tmp_path / "gen")]) == 0
    assert seen == [[build_prompt({"title": f"Book {i}", "authors": ["Ann Author"], "genres": ["Fantasy", "Fiction"],
                                   "description": "A story."}) for i in range(4)]]
    assert PROMPT_RECIPE in caplog.text and "default template" in caplog.text


def test_bad_records_and_flags_are_one_line_errors(custom_catalogue, tmp_path, capsys):
    csv_path, covers = custom_catalogue
    _prepare(csv_path, covers, tmp_path / "ds")
    (tmp_path / "ds" / PROMPT_RECIPE).write_text('{"template": "{title}", "columns": {"title": 3}, "max_genres": 8}')
    with pytest.raises(CoverforgeError, match=PROMPT_RECIPE):
        read_recipe(tmp_path / "ds")
    for args in (["--catalogue", str(csv_path), "--dataset", str(tmp_path / "ds")],  # the broken record
                 ["--catalogue", str(csv_path), "--dataset", str(tmp_path / "nowhere")],
                 ["--prompt", "a cover", "--dataset", str(tmp_path / "ds")]):
        assert main(["generate", "--model", "unused", *args, "--out", str(tmp_path / "gen")]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_dataset_prepared_again_from_a_folder_drops_the_old_record(custom_catalogue, tmp_path):
    csv_path, covers = custom_catalogue
    _prepare(csv_path, covers, tmp_path / "ds")
    folder = tmp_path / "captioned"
    save_cover(folder / "a.png", 96, 144, seed=7)
    (folder / "a.txt").write_text("a hand-written caption")
    prepare_folder(folder, PrepareOptions(out=tmp_path / "ds", min_size=64, val_fraction=0.0))
    assert not (tmp_path / "ds" / PROMPT_RECIPE).exists()
