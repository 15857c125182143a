"""What `prepare` did: counts, and every skipped row with its reason (report.json + report.md).

Both files are deterministic (no timestamps, no download counts) so a re-run writes the same bytes.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from coverforge.data.catalogue import RowSkip


@dataclass
class PrepareReport:
    source: str
    """The catalogue or folder that was prepared."""
    rows: int = 0
    """Rows (catalogue) or images (folder) seen."""
    train: int = 0
    validation: int = 0
    uncaptioned: int = 0
    """Kept images with no caption yet (folder import); `coverforge caption` fills them."""
    skipped: list[RowSkip] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return self.train + self.validation

    def reasons(self) -> dict[str, int]:
        """Skip counts by kind of reason (the reason up to its details), most common first."""
        counts = Counter(reason_kind(s.reason) for s in self.skipped)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "rows": self.rows,
            "kept": self.kept,
            "train": self.train,
            "validation": self.validation,
            "uncaptioned": self.uncaptioned,
            "skipped_count": len(self.skipped),
            "skipped_by_reason": self.reasons(),
            "skipped": [asdict(s) for s in sorted(self.skipped, key=lambda s: s.source_row)],
        }


def reason_kind(reason: str) -> str:
    return reason.split(" (")[0].split(":")[0].strip()


def write_report(out: str | Path, report: PrepareReport) -> tuple[Path, Path]:
    out = Path(out)
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(report_markdown(report), encoding="utf-8")
    return json_path, md_path


def report_markdown(report: PrepareReport) -> str:
    lines = [
        f"# Dataset preparation: {report.source}",
        "",
        f"- rows seen: {report.rows}",
        f"- kept: {report.kept} (train {report.train}, validation {report.validation})",
        f"- skipped: {len(report.skipped)}",
    ]
    if report.uncaptioned:
        lines.append(f"- without caption: {report.uncaptioned} (fill with `coverforge caption`)")
    if report.skipped:
        lines += ["", "## Skipped by reason", "", "| reason | rows |", "| --- | ---: |"]
        lines += [f"| {kind} | {n} |" for kind, n in report.reasons().items()]
        lines += ["", "## Every skipped row", "", "| row | title | reason | file or URL |", "| ---: | --- | --- | --- |"]
        for s in sorted(report.skipped, key=lambda s: s.source_row):
            row = s.source_row if s.source_row >= 0 else ""  # -1: a file of a folder import, not a catalogue row
            lines.append(f"| {row} | {_cell(s.title)} | {_cell(s.reason)} | {_cell(s.url or s.ident)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]
