"""Benchmark figures from the committed results (docs/results/<op>-<device>.json)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from infonorm.report.figures import COLORS, Figures
from infonorm.report.markup import figure_block, table

# docs/results of the source tree that this package was installed from (src layout)
RESULTS = Path(__file__).resolve().parents[3] / "docs" / "results"
DEVICES = ("cpu", "cuda")


def load(op: str, device: str, folder: Path = RESULTS) -> dict[str, Any] | None:
    path = folder / f"{op}-{device}.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def benchmark_figures(op: str, fig: Figures, folder: Path = RESULTS) -> str:
    """A chart and a table for each committed result of `op`, a line for each missing one."""
    blocks = []
    for device in DEVICES:
        record = load(op, device, folder)
        if record is None:
            command = (
                f"infonorm bench --op {op} --device {device} --out docs/results/{op}-{device}.json"
            )
            blocks.append(
                f"<p class='muted'>No committed {escape(device)} results for {escape(op)} in "
                f"{escape(str(folder))}: <code>{escape(command)}</code> records them.</p>"
            )
        else:
            blocks.append(_result_block(op, device, record, fig))
    return "".join(blocks)


def _label(row: dict[str, Any], keys: list[str]) -> str:
    return " ".join(str(row[k]) for k in keys if row.get(k) is not None)


def _result_block(op: str, device: str, record: dict[str, Any], fig: Figures) -> str:
    columns: list[str] = record["columns"]
    rows: list[dict[str, Any]] = record["rows"]
    timed = [c for c in columns if c.endswith(" ms")]
    keys = [c for c in columns if c not in timed and isinstance(rows[0].get(c), str)]
    env = record.get("environment", {})
    where = env.get("gpu") or env.get("processor", "")
    name = f"bench_{op}_{device}"
    with fig.figure(name, size=(9.5, 1.2 + 0.22 * len(rows) * max(len(timed), 1))) as (_, ax):
        labels = [_label(row, keys) for row in rows]
        height = 0.8 / max(len(timed), 1)
        for j, column in enumerate(timed):
            values = [row.get(column) for row in rows]
            positions = np.arange(len(rows)) + (j - (len(timed) - 1) / 2) * height
            ax.barh(
                positions,
                [np.nan if v is None else v for v in values],
                height=height,
                color=COLORS[j],
                label=column.removesuffix(" ms"),
            )
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("time per call [ms], log scale (shorter is faster)")
        ax.set_title(f"{op} on {device}: {where}")
        ax.legend(loc="lower right")
    caption = (
        f"infonorm bench --op {op} --device {device}, {env.get('date', '')}, {where}, "
        f"torch {env.get('torch', '')}, {env.get('threads', '')} threads. Command: "
        f"{record.get('command', '')}."
    )
    body = [[_cell(row.get(c)) for c in columns] for row in rows]
    notes = "".join(f"<p class='muted'>{escape(n)}</p>" for n in record.get("notes", []))
    return figure_block(fig.path(name), caption) + table(columns, body) + notes


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
