"""The report's appendix: benchmark results recorded earlier, read from a folder.

The results are files `<op>-<device>.json` written by `infonorm bench --out`, each naming
the machine, the date and the command. They are read from the folder given to
`infonorm reproduce --results DIR` (a source checkout keeps them in docs/results); with no
folder, or none there, the appendix says plainly that no results were recorded. They are
shown as measured on their own machine, apart from the claims this run checked.
"""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import ticker

from infonorm.quiz.report.figures import COLORS, Figures, Key
from infonorm.quiz.report.markup import cell, table

OPS = {"layer_norm": "layer norm", "mutual_information": "mutual information"}
DEVICES = {"cpu": "CPU", "cuda": "GPU"}
BANDWIDTH_COLUMNS = {"fwd TB/s", "fwd+bwd TB/s"}
# lines of a record that judge it against a project's goals: they belong in docs/, and
# a student reading the quiz's report has no use for them
_VERDICT_NOTE = re.compile(r"\b(target|goal)s?\b", re.I)
# where a recording wrote its file: a path on that machine, of no use to a reader
_OUT_OPTION = re.compile(r"\s--out\s+\S+")


def load(op: str, device: str, folder: Path) -> dict[str, Any] | None:
    """The record of `op` on `device` in `folder`, or None if there is none readable."""
    path = folder / f"{op}-{device}.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not {"columns", "rows"} <= record.keys():
        return None
    return record


def appendix(folder: str | None, fig: Figures) -> str:
    """The appendix: each recorded result with its machine, date and command."""
    head = "<h2 id='benchmarks'>Appendix — benchmarks recorded earlier</h2>"
    records = [
        (op, device, record)
        for op in OPS
        for device in DEVICES
        if folder is not None and (record := load(op, device, Path(folder))) is not None
    ]
    if not records:
        where = "" if folder is None else f" in the folder given by --results ({Path(folder).name})"
        return head + (
            f"<p>No benchmark results were recorded for this report{escape(where)}. "
            "Benchmarks are not part of <code>infonorm reproduce</code>: "
            "<code>infonorm bench --op layer_norm --device cpu --out DIR/layer_norm-cpu.json"
            "</code> records one, and <code>infonorm reproduce --results DIR</code> shows "
            "what DIR holds (in a source checkout, <code>--results docs/results</code>).</p>"
        )
    intro = (
        "<p class='recorded'>Not measured by this run. Each result below was recorded "
        "beforehand, on the machine, on the date and with the command it names, and is shown "
        "as it was recorded. The claims above do not depend on them.</p>"
    )
    return head + intro + "".join(_result(*record, fig) for record in records)


def _label(row: dict[str, Any], keys: list[str]) -> str:
    return " ".join(str(row[k]) for k in keys if row.get(k) is not None)


def _tick(label: str) -> str:
    """A case's label on two lines (its last word, the shape or dtype, below the rest): a
    narrow label column leaves the plot its width when a phone shrinks the figure."""
    head, _, last = label.rpartition(" ")
    return f"{head}\n{last}" if head else last


def _machine(env: dict[str, Any]) -> str:
    if env.get("gpu"):
        return f"{env['gpu']} (CUDA {env.get('cuda', '?')}), host {env.get('processor', '?')}"
    return f"{env.get('processor', 'unknown processor')}, {env.get('threads', '?')} threads"


def _result(op: str, device: str, record: dict[str, Any], fig: Figures) -> str:
    columns: list[str] = record["columns"]
    rows: list[dict[str, Any]] = record["rows"]
    env = record.get("environment", {})
    name = f"bench_{op}_{device}"
    command = _OUT_OPTION.sub("", str(record.get("command", f"infonorm bench --op {op}")))
    title = f"{OPS[op]} on {DEVICES[device]}"
    if set(columns) >= BANDWIDTH_COLUMNS and "peer" in columns:
        figure = _bandwidth_chart(name, title, rows, env.get("copy TB/s"), fig)
    else:
        figure = _time_chart(name, title, columns, rows, fig)
    notes = "".join(
        f"<li>{escape(n)}</li>" for n in record.get("notes", []) if not _VERDICT_NOTE.search(n)
    )
    body = [[cell(row.get(c)) for c in columns] for row in rows]
    return (
        f"<h3 id='bench-{op}-{device}'>{escape(title)}</h3>"
        f"<p class='recorded'>Recorded {escape(str(env.get('date', 'on an unknown date')))} on "
        f"{escape(_machine(env))}, torch {escape(str(env.get('torch', '?')))}, with "
        f"<code>{escape(command)}</code>.</p>"
        + figure
        + (f"<ul class='notes'>{notes}</ul>" if notes else "")
        + table(columns, body)
    )


def _bandwidth_chart(
    name: str, title: str, rows: list[dict[str, Any]], copy_tbs: float | None, fig: Figures
) -> str:
    """Effective TB/s of every peer, one group of bars per case, forward and forward+backward
    in two panels, against the copy bandwidth measured in the same run."""
    cases = list(dict.fromkeys(_label(row, ["scope", "shape", "dtype"]) for row in rows))
    peers = list(dict.fromkeys(row["peer"] for row in rows))
    height = 0.8 / len(peers)
    names = []
    for column in ("fwd TB/s", "fwd+bwd TB/s"):
        panel = f"{name}-{'forward' if column == 'fwd TB/s' else 'training'}"
        names.append(panel)
        with fig.panel(panel, size=(4.8, 1.2 + max(0.14 * len(peers), 0.45) * len(cases))) as ax:
            for j, peer in enumerate(peers):
                by_case = {
                    _label(row, ["scope", "shape", "dtype"]): row.get(column)
                    for row in rows
                    if row["peer"] == peer
                }
                values = [by_case.get(case) for case in cases]
                ax.barh(
                    np.arange(len(cases)) + (j - (len(peers) - 1) / 2) * height,
                    [np.nan if v is None else v for v in values],
                    height=height,
                    color=COLORS[j],
                )
            if copy_tbs:
                ax.axvline(copy_tbs, color="black", linestyle="--", linewidth=1)
            ax.set_yticks(range(len(cases)), [_tick(case) for case in cases], fontsize=10)
            ax.invert_yaxis()
            ax.grid(axis="y", visible=False)
            step = "forward" if column == "fwd TB/s" else "forward + backward"
            ax.set_title(step)
            ax.set_xlabel("effective TB/s (longer is faster)")
    keys = [Key(COLORS[j], peer, "bar") for j, peer in enumerate(peers)]
    if copy_tbs:
        keys.append(Key("#000000", f"device-to-device copy, {copy_tbs:.2f} TB/s", "dash"))
    return fig.block(
        name,
        names,
        f"{title}: effective bandwidth of each implementation (the least bytes the op must "
        "move, divided by its time), forward alone and forward with backward.",
        keys=keys,
        alt=f"bandwidth of {title}",
    )


def _time_chart(
    name: str, title: str, columns: list[str], rows: list[dict[str, Any]], fig: Figures
) -> str:
    """Time per call of each implementation, one row per case, as dots on a log axis (a
    bar's length means nothing on a log axis)."""
    timed = [c for c in columns if c.endswith(" ms")]
    keys = [c for c in columns if c not in timed and isinstance(rows[0].get(c), str)]
    labels = [_label(row, keys) for row in rows]
    with fig.panel(name, size=(4.8, 1.3 + 0.5 * len(rows))) as ax:
        for j, column in enumerate(timed):
            values = [row.get(column) for row in rows]
            ax.plot(
                [np.nan if v is None else v for v in values],
                np.arange(len(rows)) + (j - (len(timed) - 1) / 2) * 0.18,
                "o",
                color=COLORS[j],
                ms=7,
                ls="none",
            )
        ax.set_yticks(range(len(rows)), [_tick(label) for label in labels], fontsize=10)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("time per call [ms], log scale (left is faster)")
        ax.set_title(title)
    return fig.block(
        name,
        [name],
        f"{title}: time per call of each implementation, forward and backward; a missing dot "
        "is a case that implementation was not run on (see the table).",
        keys=[Key(COLORS[j], c.removesuffix(" ms"), "dot") for j, c in enumerate(timed)],
        alt=f"time per call of {title}",
    )
