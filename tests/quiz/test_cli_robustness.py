"""The command line on hostile files and arguments: one line on stderr, exit 2 for usage and
1 for data, no traceback, nothing written or left behind. The cases are the rows of
cases.py (which scripts/robustness_page.py renders into docs/robustness.md)."""

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import torch

import infonorm.quiz.bench
import infonorm.quiz.claims
import infonorm.quiz.counts
import infonorm.quiz.report
from infonorm.quiz import cli
from infonorm.quiz.bench import BenchReport
from infonorm.quiz.claims import Claim
from infonorm.quiz.claims.engine import holds
from tests.quiz.cases import CLI_ACCEPTED, CLI_CASES, make_files


def _permissions_enforced() -> bool:
    """False where file modes do not stop this process (root, with its capabilities)."""
    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / "probe"
        probe.write_text("x")
        probe.chmod(0)
        try:
            probe.read_text()
        except PermissionError:
            return True
        finally:
            probe.chmod(0o600)
    return False


permissions_ignored = not _permissions_enforced()


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every path below `folder` with its content (None for folders)."""
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A fresh folder as the working directory, where neither claims nor benchmarks run:
    every refusal below must come before them."""

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(infonorm.quiz.claims, "run", no_work)
    monkeypatch.setattr(infonorm.quiz.bench, "run", no_work)
    return tmp_path


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_bad_input_gets_one_line_and_the_documented_exit(case, work, capsys):
    make_files(work, case.files)
    before = _tree(work)
    code, _, err = _run(capsys, *case.argv)
    assert code == case.code, err
    assert _one_line(err).startswith(case.line), err
    assert _tree(work) == before  # nothing written, nothing left behind


@pytest.mark.parametrize(
    ("label", "argv", "files", "counts"), CLI_ACCEPTED, ids=[c[0] for c in CLI_ACCEPTED]
)
def test_awkward_but_valid_files_are_read(label, argv, files, counts, work, capsys):
    make_files(work, files)
    histogram = infonorm.quiz.counts.read_counts(argv[1], argv[3] if len(argv) > 3 else None)
    assert dict(
        zip(histogram.values.tolist(), histogram.frequencies.tolist(), strict=True)
    ) == Counter(counts)
    code, out, err = _run(capsys, *argv, "--json")
    assert code == 0, err
    fit = json.loads(out)
    assert fit["n"] == len(counts)
    assert fit["mu"] == pytest.approx(sum(counts) / len(counts), rel=1e-15)


def test_permission_denied_is_one_line(work, capsys, monkeypatch):
    path = work / "c.txt"
    path.write_text("1\n2\n")
    open_path = Path.open

    def denied(self, *args, **kwargs):
        if self.name == "c.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return open_path(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)
    code, _, err = _run(capsys, "fit", "c.txt")
    assert code == 1
    assert _one_line(err) == "infonorm: error: c.txt: cannot be read (Permission denied)"


@pytest.mark.skipif(permissions_ignored, reason="file modes are not enforced (root)")
def test_unreadable_file_for_real(work, capsys):
    path = work / "c.txt"
    path.write_text("1\n")
    path.chmod(0)
    try:
        code, _, err = _run(capsys, "fit", "c.txt")
    finally:
        path.chmod(0o600)
    assert code == 1
    assert _one_line(err) == "infonorm: error: c.txt: cannot be read (Permission denied)"


def test_fit_of_the_largest_counts_runs_in_a_real_process(tmp_path):
    # 1e12 used to crash `fit` with a traceback: the total variation allocated 8 TB
    path = tmp_path / "c.txt"
    path.write_text("0\n1000000000000\n")
    result = subprocess.run(
        [sys.executable, "-m", "infonorm", "fit", str(path), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    fit = json.loads(result.stdout)
    assert fit["mu"] == 5e11
    assert 0.0 <= fit["total_variation"] <= 1.0


def test_interrupt_is_one_line_and_130(work, capsys, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(infonorm.quiz.counts, "read_counts", interrupted)
    code, _, err = _run(capsys, "fit", "c.txt")
    assert code == 130
    assert _one_line(err) == "infonorm: error: interrupted"


# ---------------------------------------------------------------------------- reproduce --out


def _previous_report(folder: Path, name: str = "report") -> dict:
    """A report as infonorm writes one (its meta.json lists its files), in folder/name."""
    files = ["claims.json", "index.html", "meta.json", "figures/old.svg"]
    meta = {"command": "infonorm reproduce", "files": files}
    make_files(
        folder,
        {
            f"{name}/claims.json": b"[]\n",
            f"{name}/meta.json": json.dumps(meta).encode(),
            f"{name}/index.html": b"<p>previous</p>\n",
            f"{name}/figures/old.svg": b"<svg/>",
        },
    )
    return _tree(folder / name)


def test_reproduce_out_that_cannot_be_written_is_refused_before_any_claim(
    work, capsys, monkeypatch
):
    before = _previous_report(work)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    code, _, err = _run(capsys, "reproduce", "--out", "report")
    assert code == 1
    assert (
        _one_line(err)
        == "infonorm: error: --out report cannot be written: report: Permission denied"
    )
    assert _tree(work / "report") == before


@pytest.mark.skipif(permissions_ignored, reason="file modes are not enforced (root)")
def test_reproduce_into_a_read_only_folder_for_real(work, capsys):
    (work / "ro").mkdir()
    (work / "ro").chmod(0o500)
    try:
        code, _, err = _run(capsys, "reproduce", "--out", "ro/report")
    finally:
        (work / "ro").chmod(0o700)
    assert code == 1
    assert _one_line(err).startswith("infonorm: error: --out ro/report cannot be written: ro:")


def _one_quick_claim(monkeypatch):
    claim = Claim(
        "P1.a", "P1", "a claim", lambda ctx: holds(True, expected=1, measured=1, reference="r")
    )
    monkeypatch.setattr(infonorm.quiz.claims, "select", lambda problems: [claim])


def test_reproduce_that_fails_while_writing_leaves_the_previous_report(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    before = _previous_report(tmp_path)
    _one_quick_claim(monkeypatch)
    written = []

    def disk_full(path, value):
        written.append(path)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(infonorm.quiz.report, "_write_json", disk_full)
    code, _, err = _run(capsys, "reproduce", "--out", "report")
    assert written  # the claims ran and the writing started
    assert code == 1
    assert _one_line(err) == "infonorm: error: [Errno 28] No space left on device"
    assert _tree(tmp_path / "report") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_reproduce_replaces_a_previous_report_and_keeps_it_readable(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _previous_report(tmp_path)
    _one_quick_claim(monkeypatch)
    code, _, err = _run(capsys, "reproduce", "--out", "report")
    assert code == 0, err
    assert [e["id"] for e in json.loads((tmp_path / "report" / "claims.json").read_text())] == [
        "P1.a"
    ]
    # the folder gets the usual permissions, not tempfile's 0700
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "report").stat().st_mode & 0o777 == 0o777 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_reproduce_into_an_empty_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    _one_quick_claim(monkeypatch)
    code, _, err = _run(capsys, "reproduce", "--out", "empty")
    assert code == 0, err
    assert (tmp_path / "empty" / "claims.json").is_file()


# ---------------------------------------------------------------------------- bench


def test_bench_out_that_cannot_be_written_is_refused_before_the_benchmark(
    work, capsys, monkeypatch
):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", denied)  # the probe of check_creatable
    code, _, err = _run(capsys, "bench", "--op", "layer_norm", "--out", "b.json")
    assert code == 1
    assert _one_line(err) == "infonorm: error: --out b.json cannot be written: .: Permission denied"
    assert _tree(work) == {}


def _fake_bench(monkeypatch):
    report = BenchReport("layer_norm", "cpu", ["shape", "ours"], [{"shape": "2x3", "ours": 1.0}])
    monkeypatch.setattr(infonorm.quiz.bench, "run", lambda *args, **kwargs: report)


def test_bench_out_is_written_whole_or_not_at_all(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fake_bench(monkeypatch)
    code, _, err = _run(capsys, "bench", "--op", "layer_norm", "--out", "deep/b.json")
    assert code == 0, err
    first = json.loads((tmp_path / "deep" / "b.json").read_text())
    assert first["rows"] == [{"shape": "2x3", "ours": 1.0}]
    before = _tree(tmp_path)

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    code, _, err = _run(capsys, "bench", "--op", "layer_norm", "--out", "deep/b.json")
    assert code == 1
    assert _one_line(err) == "infonorm: error: [Errno 28] No space left on device"
    assert _tree(tmp_path) == before  # the previous file whole, no staging file beside it


def test_bench_out_gets_the_usual_mode_and_is_written_through_a_link(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fake_bench(monkeypatch)
    umask = os.umask(0o022)
    try:
        code, _, err = _run(capsys, "bench", "--op", "layer_norm", "--out", "b.json")
    finally:
        os.umask(umask)
    assert code == 0, err
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    real = tmp_path / "kept" / "real.json"
    make_files(tmp_path, {"kept/real.json": b"old"})
    real.chmod(0o640)
    (tmp_path / "link.json").symlink_to(real)
    code, _, err = _run(capsys, "bench", "--op", "layer_norm", "--out", "link.json")
    assert code == 0, err
    assert (tmp_path / "link.json").is_symlink()
    assert json.loads(real.read_text())["rows"] == [{"shape": "2x3", "ours": 1.0}]
    assert real.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its mode
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "b.json",
        "kept",
        "link.json",
        "real.json",
    ]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_bench_on_cuda_without_a_device(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, "bench", "--op", "mutual_information", "--device", "cuda")
    assert code == 1
    assert (
        _one_line(err)
        == "infonorm: error: device 'cuda' asked for, but torch sees no CUDA device here"
    )
