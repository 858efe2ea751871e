"""The report of `infonorm reproduce`: index.html, claims.json, meta.json and figures/ in one
folder, which may hold anything else besides.

Only the report's own files are ever written, replaced or removed; whatever else the folder
holds (notes, data, a whole project) is left as it is. The report is first written whole into
a hidden folder inside the destination, so that every later move is a rename on one file
system. Then, holding a lock on the destination (so that of several runs writing to one
folder the last wins whole), each file is renamed into place, replacing its previous version
atomically, and the files the previous report wrote that this one does not (the figures of
problems not rerun) are removed. meta.json lists the files the report wrote (its "files"):
that list is how the next run knows what is its own. A run that fails or is interrupted
before that point removes its hidden folder and leaves the previous report as it was; the
hidden folder of a run killed outright (SIGKILL) is removed by the next run that writes
there, once no process holds it.

A folder is a previous report when its meta.json is one that infonorm wrote. Anywhere else,
a file or folder named like one of the report's own (index.html, claims.json, meta.json,
figures) belongs to someone else: the destination is refused before any claim runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from infonorm._validation import check_creatable
from infonorm.quiz.claims import ClaimResult
from infonorm.quiz.claims.engine import jsonable
from infonorm.quiz.report.page import render_page

try:
    import fcntl
except ImportError:  # Windows: concurrent runs into one folder are not serialized there
    fcntl = None

__all__ = ["OWN_NAMES", "check_destination", "write_report"]

# what a report writes at the top of its folder; in a folder that is not a report, any of
# these belongs to someone else
OWN_NAMES = ("index.html", "claims.json", "meta.json", "figures")
STAGING_PREFIX = ".infonorm-report-"
# the folder made and removed at once to see whether the destination can be written
PROBE_PREFIX = ".infonorm-probe-"
# a staging folder that no run holds and that has not changed for this long is abandoned
ABANDONED_AFTER_S = 60
# signals whose handlers would interrupt the renames halfway; held back until they are done
_DEFERRED = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def check_destination(out: str | os.PathLike) -> Path:
    """Raise before any work unless a report can be written to `out`; creates nothing.

    ValueError when `out` is a file, or a folder that is not a report and holds something
    named like one of the report's own files (writing would overwrite it); OSError when
    `out`, or the nearest existing folder on the way to it, cannot be written."""
    out = Path(out)
    folder = _folder(out)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"out {out} is a file, not a folder")
    if not folder.is_dir():
        check_creatable(folder, "out")
        return out
    for name in _foreign(folder, _previous(folder), OWN_NAMES):
        raise ValueError(
            f"out {out} holds {name}, which no infonorm report wrote: the report would "
            "overwrite it; choose another folder"
        )
    _check_writable(folder, out)
    return out


def write_report(
    results: Sequence[ClaimResult], out: str | os.PathLike, meta: dict[str, Any]
) -> Path:
    """Write the report into `out`: its own files replaced, nothing else touched."""
    out = check_destination(out)
    folder = _folder(out)
    created = _make_folder(folder)
    staging = None
    try:
        staging = _new_folder(folder, STAGING_PREFIX)
        with _held(staging):
            files = _stage(results, meta, staging)
            _install(staging, folder, out, files)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):  # not empty: another run writes there too
                folder.rmdir()
        raise
    staging.rmdir()
    return out


def _stage(results: Sequence[ClaimResult], meta: dict[str, Any], staging: Path) -> list[str]:
    """Write the whole report into `staging`; the list of its files, meta.json last, which
    records it."""
    entries = [result.to_dict() for result in results]
    _write_json(staging / "claims.json", entries)
    (staging / "index.html").write_text(render_page(entries, meta, staging), encoding="utf-8")
    files = sorted({*_files(staging), "meta.json"})
    for name in files:
        if not _is_own_path(name):  # OWN_NAMES must name whatever a report holds
            raise RuntimeError(f"the report wrote {name}, not under {', '.join(OWN_NAMES)}")
    _write_json(staging / "meta.json", jsonable({**meta, "files": files}))
    return files


def _folder(out: Path) -> Path:
    """Where the files go: `out`, or for a link the folder it points to, which the report is
    written into (through the link, which stays) even when it does not exist yet."""
    return Path(os.path.realpath(out)) if out.is_symlink() else out


def _previous(folder: Path) -> set[str] | None:
    """The files the report in `folder` wrote, or None when `folder` holds no report.

    The list comes from its meta.json; a report written before meta.json listed its files
    owns its own names and the SVG figures it holds."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    files = meta.get("files")
    if isinstance(files, list) and all(isinstance(f, str) for f in files):
        return {f for f in files if _is_own_path(f)}
    if isinstance(meta.get("command"), str) and meta["command"].startswith("infonorm "):
        figures = [f"figures/{p.name}" for p in (folder / "figures").glob("*.svg")]
        return {"index.html", "claims.json", "meta.json", *figures}
    return None


def _is_own_path(name: str) -> bool:
    """Whether `name` may be a file of a report: a plain relative path below one of its
    own names (a meta.json edited to list ../x or /etc/x is not obeyed)."""
    parts = PurePosixPath(name).parts
    return (
        bool(parts)
        and not PurePosixPath(name).is_absolute()
        and ".." not in parts
        and parts[0] in OWN_NAMES
    )


def _foreign(folder: Path, previous: set[str] | None, names: Sequence[str]) -> Iterator[str]:
    """Those of `names` (paths relative to `folder`) that exist there and are not the
    previous report's. In a report's folder, all that goes by the report's own names is its
    own (figures/ as long as it is a folder); elsewhere, nothing is."""
    for name in names:
        path = folder / name
        if not (path.exists() or path.is_symlink()):
            continue
        top = PurePosixPath(name).parts[0]
        figures_ok = top != "figures" or (folder / "figures").is_dir()
        if previous is None or not figures_ok or (top not in OWN_NAMES and name not in previous):
            yield name


def _check_writable(folder: Path, out: Path) -> None:
    """OSError unless a new entry can be made in `folder` (tried for real, as permission
    bits do not tell root or read-only mounts)."""
    try:
        Path(tempfile.mkdtemp(prefix=PROBE_PREFIX, dir=folder)).rmdir()
    except OSError as error:
        raise OSError(f"out {out} cannot be written: {folder}: {error.strerror}") from None


def _make_folder(folder: Path) -> bool:
    """Make `folder` (and what leads to it) unless it exists; whether this call made it."""
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        return False
    return True


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


def _files(staging: Path) -> list[str]:
    return [p.relative_to(staging).as_posix() for p in staging.rglob("*") if not p.is_dir()]


def _install(staging: Path, folder: Path, out: Path, files: list[str]) -> None:
    """Rename the staged files into `folder`, then remove the previous report's leftovers.

    Under a lock on `folder`, so that concurrent runs install one after another; with the
    signals that would stop it halfway held back until it is done."""
    with _locked(folder), _signals_deferred():
        previous = _previous(folder)
        for name in _foreign(folder, previous, files):
            raise FileExistsError(
                f"out {out}: {name} appeared while the claims ran and is not the report's: "
                "left as it is, and no report written"
            )
        # index.html last: whoever opens it finds the files it links to in place
        for name in sorted(files, key=lambda f: (f == "index.html", f)):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, folder / name)
        for name in sorted((previous or set()) - set(files)):
            path = folder / name
            if path.is_file() or path.is_symlink():
                path.unlink()
        _remove_empty_folders(staging, folder)
        _remove_abandoned_staging(folder, staging)


def _remove_abandoned_staging(folder: Path, own: Path) -> None:
    """The staging folders of runs that were killed outright (SIGKILL, the OOM killer, a
    power cut), which no handler could remove: each run holds a lock on its own staging
    folder while it writes, which the system releases when the process dies. One that can
    be locked, and was last changed over a minute ago, has no run writing into it."""
    if fcntl is None:
        return
    for path in folder.glob(f"{STAGING_PREFIX}*"):
        if path == own or not path.is_dir() or path.is_symlink():
            continue
        with contextlib.suppress(OSError):
            if time.time() - path.stat().st_mtime < ABANDONED_AFTER_S:
                continue
            descriptor = os.open(path, os.O_RDONLY)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(path, ignore_errors=True)
            finally:
                os.close(descriptor)


def _remove_empty_folders(staging: Path, folder: Path) -> None:
    """The staging folder's emptied subfolders, and figures/ if no file is left in it."""
    for sub in sorted((p for p in staging.rglob("*") if p.is_dir()), reverse=True):
        sub.rmdir()
    figures = folder / "figures"
    if figures.is_dir() and not figures.is_symlink():
        with contextlib.suppress(OSError):  # not empty
            figures.rmdir()


@contextlib.contextmanager
def _locked(folder: Path, flags: int = 0) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | flags)
        yield
    finally:
        os.close(descriptor)


def _held(staging: Path) -> contextlib.AbstractContextManager[None]:
    """This run's lock on its staging folder: it is being written, not abandoned."""
    return _locked(staging, fcntl.LOCK_NB if fcntl is not None else 0)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
