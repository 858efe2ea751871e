"""The report of `infonorm reproduce`: claims.json, meta.json and index.html in one folder.

The folder is built beside its destination and moved into place only when complete, so
that a failed run leaves the previous report as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infonorm.claims import ClaimResult
from infonorm.claims.engine import jsonable
from infonorm.report.page import render_page

__all__ = ["write_report"]


def write_report(
    results: Sequence[ClaimResult], out: str | os.PathLike, meta: dict[str, Any]
) -> Path:
    """Write claims.json, meta.json and index.html into `out`, replacing it atomically."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder, but {out} is a file")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
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
