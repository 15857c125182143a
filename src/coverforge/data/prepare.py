"""`prepare`: catalogue CSV (or image folder) + covers -> imagefolder dataset with prompts, split, report.

Stages: read rows -> find or download each cover -> check/convert/hash covers (worker processes)
-> drop duplicates -> split -> write. Each bad row becomes a report line; none stops the run. A
full disk does: it is an error for the whole run (data.disk_space), never a cover's fault.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from coverforge.data.catalogue import Book, RowSkip, read_catalogue
from coverforge.data.colour import GRAYSCALE_THRESHOLD
from coverforge.data.disk_space import files_size, full_disk_is_fatal
from coverforge.data.fetch import FetchOptions, fetch_all
from coverforge.data.images import CoverChecks
from coverforge.data.layout import METADATA, SPLITS, write_metadata
from coverforge.data.process import CoverTask, find_duplicates, process_all, stratified_split
from coverforge.data.prompt_recipe import PromptRecipe, write_recipe
from coverforge.data.prompts import DEFAULT_TEMPLATE, check_template, unique_genres
from coverforge.data.report import PrepareReport, write_report
from coverforge.data.sources import Entry, folder_entries, locate_covers
from coverforge.errors import CoverforgeError, require_writable

log = logging.getLogger(__name__)


@dataclass
class PrepareOptions:
    out: Path
    """Dataset folder to write (train/, validation/, report.json, report.md)."""
    images: Path | None = None
    """Folder with the covers (by row index, path column or file name); None with download=True."""
    download: bool = False
    """Fetch covers from the catalogue's image_url column (cached in download_dir)."""
    download_dir: Path | None = None
    """Where downloads are kept between runs; default OUT/.downloads (hidden from imagefolder)."""
    columns: dict[str, str] = field(default_factory=dict)
    """Our field -> CSV column, on top of the Goodreads defaults (fields: see catalogue.FIELDS)."""
    min_size: int = 256
    """Covers whose shorter side is smaller are skipped."""
    orientation: str = "portrait"
    """'portrait', 'landscape' or 'any'."""
    grayscale_threshold: float = GRAYSCALE_THRESHOLD
    """Colourfulness below which a cover counts as grayscale (coverforge.data.colour)."""
    keep_grayscale: bool = False
    """Keep grayscale covers (the default drops them: the seed SDXL model drifted to grayscale)."""
    near_duplicate_distance: int | None = 6
    """Max differing bits (of 64) in both pHash and dHash for a near duplicate; None: exact only."""
    val_fraction: float = 0.1
    seed: int = 0
    template: str | None = None
    """str.format prompt template over title, authors, author, publisher, genres, description."""
    max_genres: int = 8
    max_side: int | None = None
    """Downscale stored images so the long side is at most this; None keeps the original size."""
    workers: int = 1
    """Processes for decoding and checking covers."""
    fetch: FetchOptions = field(default_factory=FetchOptions)
    allow_outside: bool = False
    """Read covers that a path column (`../`, absolute) or a symlink places outside the given folders."""

    def __post_init__(self):
        self.out = Path(self.out)
        self.images = Path(self.images) if self.images is not None else None
        if self.orientation not in ("portrait", "landscape", "any"):
            raise CoverforgeError(f"orientation must be portrait, landscape or any, not {self.orientation!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise CoverforgeError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.min_size < 1 or self.workers < 1 or self.max_genres < 1:
            raise CoverforgeError("min_size, workers and max_genres must be >= 1")
        if self.max_side is not None and self.max_side < self.min_size:
            raise CoverforgeError(f"max_side ({self.max_side}) must be >= min_size ({self.min_size})")
        if self.near_duplicate_distance is not None and not 0 <= self.near_duplicate_distance <= 64:
            raise CoverforgeError("near_duplicate_distance must be in 0..64 or None")
        if self.images is not None and self.download:
            raise CoverforgeError("give either an images folder or download, not both")
        if self.template is not None:
            check_template(self.template)

    def checks(self) -> CoverChecks:
        threshold = None if self.keep_grayscale else self.grayscale_threshold
        return CoverChecks(min_size=self.min_size, orientation=self.orientation, grayscale_threshold=threshold)


def prepare_catalogue(csv_path: str | Path, options: PrepareOptions) -> PrepareReport:
    """Catalogue rows + covers (local folder or downloads) -> dataset folder; returns the report."""
    csv_path = Path(csv_path)
    books, skips = read_catalogue(csv_path, options.columns)
    _check_out(options.out, [options.images] if options.images else [])
    report = PrepareReport(source=str(csv_path), rows=len(books) + len(skips), skipped=list(skips))
    with full_disk_is_fatal(options.out, lambda: 0):  # downloads: how much is not known before they arrive
        if options.download:
            sources = _download_covers(books, options, report)
        else:
            sources = locate_covers(books, options.images, csv_path.parent, report.skipped, options.allow_outside)
    urls = {b.source_row: b.image_url for b in books}
    recipe = PromptRecipe(DEFAULT_TEMPLATE if options.template is None else options.template, dict(options.columns), options.max_genres)
    entries = [_book_entry(b, sources[b.source_row], recipe, urls[b.source_row]) for b in books if b.source_row in sources]
    return _build(entries, options, report, recipe)


def prepare_folder(folder: str | Path, options: PrepareOptions) -> PrepareReport:
    """Image folder with captions (metadata.jsonl, image_captions.json or sidecar .txt) -> dataset folder."""
    folder = Path(folder)
    _check_out(options.out, [folder])
    entries, skips, seen = folder_entries(folder, options.out, options.allow_outside)
    report = PrepareReport(source=str(folder), rows=seen, skipped=skips)
    return _build(entries, options, report, recipe=None)  # the folder's captions are the prompts


def _book_entry(book: Book, source: Path, recipe: PromptRecipe, url: str = "") -> Entry:
    fields = {
        "title": book.title,
        "authors": book.authors,
        "publisher": book.publisher,
        "genres": book.genres,
        "description": book.description,
    }
    text = recipe.prompt(fields)
    return Entry(book.source_row, source, f"{book.source_row:06d}", text, fields, {"isbn": book.isbn, "pages": book.pages}, url)


def _download_covers(books: list[Book], options: PrepareOptions, report: PrepareReport) -> dict[int, Path]:
    dest = options.download_dir or options.out / ".downloads"
    wanted = [b for b in books if b.image_url]
    report.skipped += [RowSkip(b.source_row, "no image_url", "", b.title) for b in books if not b.image_url]
    results = fetch_all([b.image_url for b in wanted], dest, options.fetch)
    fetched = sum(r.downloaded for r in results.values())
    log.info("covers: %d downloaded, %d already cached", fetched, sum(r.path is not None for r in results.values()) - fetched)
    sources = {}
    for b in wanted:
        r = results[b.image_url]
        if r.path is None:
            report.skipped.append(RowSkip(b.source_row, f"download failed: {r.error}", b.image_url, b.title, b.image_url))
        else:
            sources[b.source_row] = r.path
    return sources


def _build(entries: list[Entry], options: PrepareOptions, report: PrepareReport, recipe: PromptRecipe | None) -> PrepareReport:
    with full_disk_is_fatal(options.out, lambda: files_size(e.source for e in entries)):
        try:
            return _write(entries, options, report, recipe)
        finally:
            shutil.rmtree(options.out / ".staging", ignore_errors=True)


def _write(entries: list[Entry], options: PrepareOptions, report: PrepareReport, recipe: PromptRecipe | None) -> PrepareReport:
    out = options.out
    staging = out / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    checks = options.checks()
    tasks = [CoverTask(e.key, str(e.source), e.stem, str(staging), checks, options.max_side) for e in entries]
    results = process_all(tasks, options.workers)
    by_key = {e.key: e for e in entries}
    good = []
    for r in results:
        if r.reason:
            report.skipped.append(_skip(by_key[r.key], r.reason))
        else:
            good.append(r)
    duplicates = find_duplicates(good, options.near_duplicate_distance)
    for key, (kept, kind) in duplicates.items():
        report.skipped.append(_skip(by_key[key], f"{kind} duplicate of row {kept} ({_ident(by_key[kept])})"))
    good = [r for r in good if r.key not in duplicates]
    strata = {r.key: _primary_genre(by_key[r.key]) or "unknown" for r in good}
    validation = stratified_split(strata, options.val_fraction, options.seed)
    rows = {split: [] for split in SPLITS}
    for split in SPLITS:
        shutil.rmtree(out / split, ignore_errors=True)
        (out / split).mkdir(parents=True)
    for r in sorted(good, key=lambda r: r.key):
        split = "validation" if r.key in validation else "train"
        (staging / r.file_name).replace(out / split / r.file_name)
        rows[split].append(_metadata_row(by_key[r.key], r))
    shutil.rmtree(staging, ignore_errors=True)
    for split in SPLITS:
        write_metadata(out / split, rows[split])
    write_recipe(out, recipe)  # so `generate --catalogue` rebuilds these prompts, not the defaults
    report.train, report.validation = len(rows["train"]), len(rows["validation"])
    report.uncaptioned = sum(1 for split in SPLITS for row in rows[split] if not row["text"])
    write_report(out, report)
    return report


def _metadata_row(entry: Entry, result) -> dict:
    f = entry.fields
    row = {
        "file_name": result.file_name,
        "text": entry.text,
        "title": f.get("title", ""),
        "authors": list(f.get("authors", [])),
        "publisher": f.get("publisher", ""),
        "genres": unique_genres(f.get("genres", [])),
        "primary_genre": _primary_genre(entry),
        "description": f.get("description", ""),
        "width": result.width,
        "height": result.height,
        "sha256": result.sha256,
        "source_row": entry.key,
    }
    row.update(entry.extra)
    return row


def _primary_genre(entry: Entry) -> str:
    genres = unique_genres(entry.fields.get("genres", []), 1)
    return genres[0] if genres else ""


def _ident(entry: Entry) -> str:
    return entry.fields.get("title") or entry.source.name


def _skip(entry: Entry, reason: str) -> RowSkip:
    """A report line naming the book (title, row), its cover file and, for downloads, the URL."""
    return RowSkip(entry.key, reason, entry.url or entry.source.name, str(entry.fields.get("title") or ""), entry.url)


def _check_out(out: Path, sources: list[Path]) -> None:
    """Refuse an output folder that is not ours to overwrite, that holds the inputs, or that
    cannot be written (a file, under a file, read-only), before any work."""
    if out.exists() and not out.is_dir():
        raise CoverforgeError(f"--out {out} is an existing file; give a folder for the dataset")
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise CoverforgeError(f"--out {out}: {parent} is a file, not a folder")
            break
    for split in SPLITS:
        d = out / split
        if d.exists() and not (d / METADATA).is_file():
            raise CoverforgeError(f"{d} exists and is not a coverforge dataset split; choose another --out")
    resolved = out.resolve()
    for src in sources:
        s = src.resolve()
        if s == resolved or any(s == (resolved / split) or (resolved / split) in s.parents for split in SPLITS):
            raise CoverforgeError(f"--out {out} would overwrite the input {src}; choose another folder")
    require_writable(out, "the dataset folder (--out)")

