"""The report of `infonorm reproduce`: claims.json, meta.json and index.html in one folder.

The folder is built beside its destination and moved into place only when complete, so
that a failed run leaves the previous report as it was.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infonorm._validation import check_creatable
from infonorm.quiz.claims import ClaimResult
from infonorm.quiz.claims.engine import jsonable
from infonorm.quiz.report.page import render_page

__all__ = ["check_destination", "write_report"]

# what marks a folder as a report of ours, which may be replaced
_REPORT_FILES = ("claims.json", "meta.json")


def check_destination(out: str | os.PathLike) -> Path:
    """Raise before any work unless a report can be written to `out`.

    ValueError when `out` is a file, or a folder that is neither empty nor a previous
    report (replacing it would delete what it holds); OSError when the nearest existing
    folder on the way to `out` cannot be written. Creates nothing.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder, but {out} is a file")
    if out.is_dir() and any(out.iterdir()) and not all((out / f).is_file() for f in _REPORT_FILES):
        raise ValueError(
            f"out {out} is a folder that holds no report (no claims.json and meta.json): "
            "replacing it would delete its files; choose a new or empty folder"
        )
    # the report is staged beside `out`, in the folder that will hold it
    check_creatable(out, "out")
    return out


def write_report(
    results: Sequence[ClaimResult], out: str | os.PathLike, meta: dict[str, Any]
) -> Path:
    """Write claims.json, meta.json and index.html into `out`, replacing it atomically."""
    out = check_destination(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_folder(out.parent, f".{out.name}.")
    try:
        entries = [result.to_dict() for result in results]
        _write_json(staging / "claims.json", entries)
        _write_json(staging / "meta.json", jsonable(meta))
        (staging / "index.html").write_text(render_page(entries, meta, staging), encoding="utf-8")
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _new_folder(parent: Path, prefix: str) -> Path:
    """A new empty folder in `parent` with the usual permissions (umask applies), unlike
    tempfile.mkdtemp, whose 0700 would make the report unreadable to anyone else."""
    while True:
        folder = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder


def _write_json(path: Path, value: Any) -> None:
    path.write_text(
        json.dumps(value, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8"
    )


def _replace(staging: Path, out: Path) -> None:
    """Move `staging` to `out`; the old `out`, if any, is removed only after the move."""
    if not out.exists():
        staging.rename(out)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    retired.rmdir()
    out.rename(retired)
    try:
        staging.rename(out)
    except BaseException:
        retired.rename(out)
        raise
    shutil.rmtree(retired, ignore_errors=True)
