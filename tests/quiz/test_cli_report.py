"""`infonorm reproduce --out DIR`: only the report's own files are written, replaced or
removed, whatever DIR is (a new folder, `.`, a folder of other files, a link, a mount point),
whatever stops the run (an error, Ctrl-C, SIGTERM, SIGHUP), and however many runs write to
DIR at once."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import infonorm.quiz.claims
import infonorm.quiz.report
from infonorm.quiz import cli
from tests.quiz.cases import make_files
from tests.quiz.quick_run import QUICK_CLAIM, child_env

QUICK_RUN = Path(__file__).with_name("quick_run.py")
REPORT_FILES = ["claims.json", "index.html", "meta.json"]


def _tree(folder: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


def _visible(tree: dict) -> dict:
    return {k: v for k, v in tree.items() if not k.startswith(".")}


@pytest.fixture
def quick(tmp_path, monkeypatch):
    """A working folder where `reproduce` checks one quick claim."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(infonorm.quiz.claims, "select", lambda problems: [QUICK_CLAIM])
    return tmp_path


def _reproduce(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(["reproduce", *argv])
    _, err = capsys.readouterr()
    return code, err


def _report_of(folder: Path) -> dict:
    meta = json.loads((folder / "meta.json").read_text())
    claims = json.loads((folder / "claims.json").read_text())
    return {"seed": meta["seed"], "measured": claims[0]["measured"], "files": meta["files"]}


def _old_report(folder: Path, files: list[str] | None) -> None:
    """A previous report in `folder`: with its list of files, or as written before reports
    listed them (`files` None)."""
    meta = {"command": "infonorm reproduce --quick"}
    if files is not None:
        meta["files"] = files
    make_files(
        folder,
        {
            "meta.json": json.dumps(meta).encode(),
            "claims.json": b"[]",
            "index.html": b"<p>old</p>",
            "figures/p9_old.svg": b"<svg/>",
        },
    )


# ---------------------------------------------------------------------------- what is kept


def test_the_files_a_user_put_in_a_report_folder_are_kept(quick, capsys):
    _old_report(quick / "r", ["meta.json", "claims.json", "index.html", "figures/p9_old.svg"])
    mine = {"notes.txt": b"my notes", "data/x.csv": b"a,b\n1,2\n", "figures/mine.png": b"png"}
    make_files(quick / "r", mine)
    code, err = _reproduce(capsys, "--out", "r", "--seed", "3")
    assert code == 0, err
    tree = _tree(quick / "r")
    assert {name: tree[name] for name in mine} == mine
    # the old report's figure is gone, the user's beside it stays
    assert "figures/p9_old.svg" not in tree
    assert _report_of(quick / "r") == {"seed": 3, "measured": 3, "files": REPORT_FILES}
    assert sorted(p.name for p in quick.iterdir()) == ["r"]


def test_a_report_s_own_names_are_its_own_even_when_not_listed(quick, capsys, monkeypatch):
    # figures/a.svg is not in the list: a run killed while renaming its files left it
    _old_report(quick / "r", ["meta.json", "claims.json", "index.html"])
    make_files(quick / "r", {"figures/a.svg": b"<svg>killed</svg>"})
    render_page = infonorm.quiz.report.render_page

    def with_a_figure(entries, meta, folder):
        (folder / "figures").mkdir(exist_ok=True)
        (folder / "figures" / "a.svg").write_text("<svg>new</svg>")
        return render_page(entries, meta, folder)

    monkeypatch.setattr(infonorm.quiz.report, "render_page", with_a_figure)
    code, err = _reproduce(capsys, "--out", "r")
    assert code == 0, err
    assert (quick / "r" / "figures" / "a.svg").read_text() == "<svg>new</svg>"
    assert _report_of(quick / "r")["files"] == ["claims.json", "figures/a.svg", *REPORT_FILES[1:]]


def test_a_report_written_before_reports_listed_their_files_is_replaced(quick, capsys):
    _old_report(quick / "r", None)
    make_files(quick / "r", {"notes.txt": b"mine"})
    code, err = _reproduce(capsys, "--out", "r")
    assert code == 0, err
    tree = _tree(quick / "r")
    assert tree["notes.txt"] == b"mine"
    assert "figures/p9_old.svg" not in tree  # the SVG figures of an old report are its own
    assert sorted(tree) == ["claims.json", "index.html", "meta.json", "notes.txt"]


def test_out_dot_writes_into_the_working_folder_beside_a_project(quick, capsys):
    project = {"README.md": b"# mine", "src/main.py": b"print(1)"}
    make_files(quick, project)
    for seed in ("1", "2"):
        code, err = _reproduce(capsys, "--out", ".", "--seed", seed)
        assert code == 0, err
    assert _tree(quick) == {**_tree(quick), **project}
    assert sorted(_tree(quick)) == ["README.md", *REPORT_FILES, "src", "src/main.py"]
    assert _report_of(quick)["seed"] == 2


def test_a_file_list_naming_paths_outside_the_report_is_not_obeyed(quick, capsys):
    make_files(quick, {"precious.txt": b"mine", "r/notes.txt": b"mine"})
    _old_report(quick / "r", ["../precious.txt", "notes.txt", "/etc/hostname", "meta.json"])
    code, err = _reproduce(capsys, "--out", "r")
    assert code == 0, err
    assert (quick / "precious.txt").read_bytes() == b"mine"
    assert (quick / "r" / "notes.txt").read_bytes() == b"mine"


def test_a_link_to_a_report_is_written_through(quick, capsys):
    _old_report(quick / "real", ["meta.json", "claims.json", "index.html"])
    (quick / "link").symlink_to("real")
    code, err = _reproduce(capsys, "--out", "link", "--seed", "5")
    assert code == 0, err
    assert (quick / "link").is_symlink()
    assert _report_of(quick / "real")["seed"] == 5
    assert sorted(p.name for p in quick.iterdir()) == ["link", "real"]


def test_a_link_to_nowhere_gets_its_folder(quick, capsys):
    (quick / "link").symlink_to("made/here")
    code, err = _reproduce(capsys, "--out", "link")
    assert code == 0, err
    assert (quick / "link").is_symlink()
    assert sorted(_tree(quick / "made" / "here")) == REPORT_FILES


def test_the_destination_itself_is_never_moved_or_removed(quick, capsys, monkeypatch):
    # a mount point (or `.`) cannot be renamed or removed: EBUSY, only after the whole run
    _old_report(quick / "mnt", ["meta.json", "claims.json", "index.html"])
    destination = str(quick / "mnt")

    def busy(original):
        def call(*paths, **kwargs):
            if any(os.path.abspath(p) == destination for p in paths):
                raise OSError(errno.EBUSY, "Device or resource busy")
            return original(*paths, **kwargs)

        return call

    for name in ("rename", "replace", "rmdir"):
        monkeypatch.setattr(os, name, busy(getattr(os, name)))
    monkeypatch.setattr(shutil, "rmtree", busy(shutil.rmtree))
    code, err = _reproduce(capsys, "--out", "mnt", "--seed", "4")
    assert code == 0, err
    assert _report_of(quick / "mnt")["seed"] == 4


def test_a_run_that_fails_into_a_new_folder_leaves_nothing(quick, capsys, monkeypatch):
    def disk_full(path, value):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(infonorm.quiz.report, "_write_json", disk_full)
    code, err = _reproduce(capsys, "--out", "new/report")
    assert code == 1
    assert err == "infonorm: error: [Errno 28] No space left on device\n"
    assert _tree(quick) == {"new": None}  # the folder on the way stays; the report's is gone


def test_a_file_that_appears_during_the_run_is_not_overwritten(quick, capsys, monkeypatch):
    render_page = infonorm.quiz.report.render_page

    def someone_writes_index(entries, meta, folder):
        (quick / "site" / "index.html").write_text("mine")
        return render_page(entries, meta, folder)

    monkeypatch.setattr(infonorm.quiz.report, "render_page", someone_writes_index)
    (quick / "site").mkdir()
    code, err = _reproduce(capsys, "--out", "site")
    assert code == 1
    assert err.startswith("infonorm: error: out site: index.html appeared while the claims ran")
    assert _tree(quick / "site") == {"index.html": b"mine"}


# ---------------------------------------------------------------------------- real processes


def _start(tmp_path: Path, *args: str, **options) -> subprocess.Popen:
    flags = [f"--{k}={v}" if v is not True else f"--{k}" for k, v in options.items()]
    return subprocess.Popen(
        [sys.executable, str(QUICK_RUN), *flags, "--", *args],
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # as from a shell: Ctrl-C (SIGINT) is not ignored in the child
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_stopping_signals_remove_the_half_written_report(tmp_path):
    stops = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}
    runs = {}
    for name in stops:
        _old_report(tmp_path / name, ["meta.json", "claims.json", "index.html"])
        ready = tmp_path / f"{name}.ready"
        runs[name] = (_start(tmp_path, "reproduce", "--out", name, ready=ready, hold=True), ready)
    before = {name: _tree(tmp_path / name) for name in stops}
    for process, ready in runs.values():
        _wait_for(ready, process)
    # the report is half-written, in hidden folders, when the signals come
    assert any(part.startswith(".") for path in _tree(tmp_path) for part in path.split("/"))
    for name, (process, _) in runs.items():
        process.send_signal(getattr(signal, name))
    for name, (process, _) in runs.items():
        _, err = process.communicate(timeout=60)
        assert process.returncode == stops[name], err
        assert (
            err
            == f"infonorm: error: {'interrupted' if name == 'SIGINT' else f'stopped by {name}'}\n"
        )
        assert _tree(tmp_path / name) == before[name]
    assert sorted(_tree(tmp_path)) == sorted(
        [*stops, *(f"{n}.ready" for n in stops), *(f"{n}/{f}" for n in stops for f in before[n])]
    )


def test_four_runs_into_one_folder_last_wins_with_nothing_left_over(tmp_path):
    go = tmp_path / "go"
    runs = []
    for seed in range(4):
        ready = tmp_path / f"{seed}.ready"
        process = _start(
            tmp_path, "reproduce", "--out", "r", "--seed", str(seed), ready=ready, go=go
        )
        runs.append((process, ready))
    for process, ready in runs:
        _wait_for(ready, process)
    go.touch()  # all four have written their report and now install it at once
    for process, _ in runs:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert err == ""
    report = _report_of(tmp_path / "r")
    assert report["seed"] == report["measured"]  # every file from one run
    assert sorted(_tree(tmp_path / "r")) == REPORT_FILES
    assert sorted(_tree(tmp_path)) == ["0.ready", "1.ready", "2.ready", "3.ready", "go", "r"] + [
        f"r/{name}" for name in REPORT_FILES
    ]


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(quick, capsys):
    # SIGKILL, which no handler sees, leaves the half-written hidden folder behind; the next
    # run removes it once nothing holds it, and never one that a live run holds
    import fcntl

    _reproduce(capsys, "--out", "r")
    staging = infonorm.quiz.report.STAGING_PREFIX
    killed, writing, fresh = (quick / "r" / f"{staging}{name}" for name in ("k", "w", "f"))
    for folder in (killed, writing, fresh):
        (folder / "figures").mkdir(parents=True)
        (folder / "figures" / "a.svg").write_text("<svg/>")
    long_ago = time.time() - 2 * infonorm.quiz.report.ABANDONED_AFTER_S
    for folder in (killed, writing):
        os.utime(folder, (long_ago, long_ago))
    held = os.open(writing, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        code, _ = _reproduce(capsys, "--out", "r", "--seed", "3")
    finally:
        os.close(held)
    assert code == 0
    assert not killed.exists()
    assert (writing / "figures" / "a.svg").exists()  # a live run's, however old
    assert (fresh / "figures" / "a.svg").exists()  # too recent to judge
    assert _report_of(quick / "r")["seed"] == 3


def test_a_real_sigkill_leaves_nothing_after_the_next_run(tmp_path):
    ready = tmp_path / "ready"
    killed = _start(tmp_path, "reproduce", "--out", "r", ready=ready, hold=True)
    _wait_for(ready, killed)
    killed.kill()  # SIGKILL, while the report is half-written
    killed.wait()
    [left] = (tmp_path / "r").glob(f"{infonorm.quiz.report.STAGING_PREFIX}*")
    long_ago = time.time() - 2 * infonorm.quiz.report.ABANDONED_AFTER_S
    os.utime(left, (long_ago, long_ago))
    again = _start(tmp_path, "reproduce", "--out", "r")
    assert again.wait(timeout=120) == 0, again.communicate()[1]
    assert not left.exists()
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == REPORT_FILES
