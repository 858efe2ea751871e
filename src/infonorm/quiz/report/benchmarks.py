"""Benchmark figures from the committed results (docs/results/<op>-<device>.json)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from infonorm.quiz.report.figures import COLORS, Figures
from infonorm.quiz.report.markup import figure_block, table

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
    env = record.get("environment", {})
    where = env.get("gpu") or env.get("processor", "")
    name = f"bench_{op}_{device}"
    if set(columns) >= BANDWIDTH_COLUMNS and "peer" in columns:
        _bandwidth_chart(name, f"{op} on {device}: {where}", rows, env.get("copy TB/s"), fig)
    else:
        _time_chart(name, f"{op} on {device}: {where}", columns, rows, fig)
    caption = (
        f"infonorm bench --op {op} --device {device}, {env.get('date', '')}, {where}, "
        f"torch {env.get('torch', '')}, {env.get('threads', '')} threads. Command: "
        f"{record.get('command', '')}."
    )
    body = [[_cell(row.get(c)) for c in columns] for row in rows]
    notes = "".join(f"<p class='muted'>{escape(n)}</p>" for n in record.get("notes", []))
    return figure_block(fig.path(name), caption) + table(columns, body) + notes


BANDWIDTH_COLUMNS = {"fwd TB/s", "fwd+bwd TB/s"}


def _bandwidth_chart(
    name: str, title: str, rows: list[dict[str, Any]], copy_tbs: float | None, fig: Figures
) -> None:
    """Effective TB/s of every peer, one group of bars per case, forward and forward+backward
    side by side, against the copy bandwidth measured in the same run."""
    cases = list(dict.fromkeys(_label(row, ["scope", "shape", "dtype"]) for row in rows))
    peers = list(dict.fromkeys(row["peer"] for row in rows))
    figure_height = 1.5 + 0.16 * len(cases) * len(peers)
    with fig.figure(name, ncols=2, size=(11, figure_height)) as (_, axes):
        for ax, column in zip(axes, ("fwd TB/s", "fwd+bwd TB/s"), strict=True):
            height = 0.8 / len(peers)
            for j, peer in enumerate(peers):
                by_case = {
                    _label(row, ["scope", "shape", "dtype"]): row.get(column)
                    for row in rows
                    if row["peer"] == peer
                }
                values = [by_case.get(case) for case in cases]
                positions = np.arange(len(cases)) + (j - (len(peers) - 1) / 2) * height
                ax.barh(
                    positions,
                    [np.nan if v is None else v for v in values],
                    height=height,
                    color=COLORS[j],
                    label=peer,
                )
            if copy_tbs:
                ax.axvline(copy_tbs, color="black", linestyle="--", linewidth=1)
                ax.text(copy_tbs, -0.7, " copy", fontsize=8, va="bottom")
            ax.set_yticks(range(len(cases)), cases if column == "fwd TB/s" else [], fontsize=8)
            ax.invert_yaxis()
            ax.set_xlabel(f"{column.removesuffix(' TB/s')}: effective TB/s (longer is faster)")
        axes[0].set_title(title, loc="left")
        axes[1].legend(loc="lower right", fontsize=8)


def _time_chart(
    name: str, title: str, columns: list[str], rows: list[dict[str, Any]], fig: Figures
) -> None:
    timed = [c for c in columns if c.endswith(" ms")]
    keys = [c for c in columns if c not in timed and isinstance(rows[0].get(c), str)]
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
        ax.set_title(title)
        ax.legend(loc="lower right")


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
