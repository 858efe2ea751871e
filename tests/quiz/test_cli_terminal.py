"""What `infonorm` prints: progress lines when piped, a closing tally, results that never
break a word, user strings shown as typed, output that fails without stopping the work,
and one line for Ctrl-C at any moment of the start-up."""

import errno
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import infonorm.quiz.claims
from infonorm.quiz import cli
from infonorm.quiz.claims import Claim
from infonorm.quiz.claims.engine import Evidence, holds
from tests.quiz.quick_run import QUICK_CLAIM, child_env

QUICK_RUN = Path(__file__).with_name("quick_run.py")
ROOT = Path(__file__).resolve().parents[2]
ENV = child_env()
LONG_WORD = "scipy.stats.nbinom.logpmf(k,n=1,p=1−λ)_summed_over_every_population_of_the_grid"


def _refuted(ctx):
    return Evidence(1, 2, 0.1, "refuted", "a reference", {"max_error": 1.0})


def _broken(ctx):
    raise RuntimeError("the check broke")


CLAIMS = [
    QUICK_CLAIM,
    Claim("P2.b", "P2", "a false claim", _refuted, title="a false claim"),
    Claim("P3.c", "P3", "a broken check", _broken, title="a broken check"),
    Claim(
        "P3.d",
        "P3",
        "a claim with a long reference",
        lambda ctx: holds(
            True,
            expected=1,
            measured=1,
            reference="checked against "
            + " ".join(["a reference of many words"] * 6)
            + " and "
            + LONG_WORD,
        ),
    ),
]


@pytest.fixture
def claims(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(infonorm.quiz.claims, "select", lambda problems: CLAIMS)
    return tmp_path


def test_piped_output_announces_each_claim_and_ends_with_a_tally(claims, capsys):
    code = cli.main(["reproduce", "--out", "r"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err == "infonorm: error: checks failed to run: P3.c\n"
    lines = out.splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"\[\d/4\] ", line)]
    assert [lines[i] for i in starts] == [
        "[1/4] P1.a: a quick claim",
        "[2/4] P2.b: a false claim",
        "[3/4] P3.c: a broken check",
        "[4/4] P3.d",
    ]
    # each start line comes before its claim's result
    assert [lines[i + 1].split() for i in starts] == [
        ["confirmed", "P1.a", lines[starts[0] + 1].split()[2], "s"],
        ["refuted", "P2.b", lines[starts[1] + 1].split()[2], "s"],
        ["error", "P3.c", lines[starts[2] + 1].split()[2], "s"],
        ["confirmed", "P3.d", lines[starts[3] + 1].split()[2], "s"],
    ]
    assert lines[-2:] == [
        "4 claims checked: 2 confirmed, 1 refuted (P2.b), 1 could not be checked (P3.c).",
        "Report: r/index.html   Data: r/claims.json",
    ]


def test_results_fit_80_columns_without_breaking_a_word(claims, capsys):
    cli.main(["reproduce", "--out", "r"])
    out = capsys.readouterr().out
    table = out[out.index("Quiz 1: claims checked") :]
    words = {w for line in table.splitlines() for w in line.split()}
    reference = json.loads(Path("r/claims.json").read_text())[3]["reference"]
    assert set(reference.split()) <= words  # every word whole, on one line
    for line in table.splitlines():
        assert len(line) <= 80 or LONG_WORD in line, line


def test_user_strings_are_shown_as_typed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("units.csv").write_text("site,visits [/day],n [count]\nA,3,4\n")
    for column in ("visits [/day]", "n [count]"):
        assert cli.main(["fit", "units.csv", "--column", column]) == 0
        out = capsys.readouterr().out
        assert f"Q_λ fitted to units.csv [{column}]" in out, out
        assert "H(Pop, Q_λ*) [nats]" in out
    monkeypatch.setattr(infonorm.quiz.claims, "select", lambda problems: [QUICK_CLAIM])
    assert cli.main(["reproduce", "--out", "report[v2]"]) == 0
    out = capsys.readouterr().out
    assert "Report: report[v2]/index.html   Data: report[v2]/claims.json" in out
    assert cli.main(["fit", "[bold]x[/bold] :smile:.txt"]) == 1
    assert capsys.readouterr().err == (
        "infonorm: error: [bold]x[/bold] :smile:.txt: no such file\n"
    )


# ---------------------------------------------------------------------------- stdout failing


def _quick(tmp_path: Path, *args: str, stdout) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(QUICK_RUN), "--", *args],
        cwd=tmp_path,
        env=ENV,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )


def _closed_pipe() -> int:
    """The write end of a pipe whose reader has gone: every write gets EPIPE."""
    read, write = os.pipe()
    os.close(read)
    return write


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_closed_or_full_stdout_does_not_stop_the_report(tmp_path):
    pipe = _closed_pipe()
    with open("/dev/full", "w") as full:
        runs = {
            "pipe": _quick(tmp_path, "reproduce", "--out", "pipe", stdout=pipe),
            "full": _quick(tmp_path, "reproduce", "--out", "full", stdout=full),
        }
        os.close(pipe)
        errors = {name: run.communicate(timeout=120)[1] for name, run in runs.items()}
    assert {name: run.returncode for name, run in runs.items()} == {"pipe": 0, "full": 0}
    # a reader that stopped reading (`| head -1`) is no error; a full disk is worth a word
    assert errors == {
        "pipe": "",
        "full": "infonorm: warning: standard output failed (No space left on device); "
        "the report was written: full/index.html\n",
    }
    for name in runs:
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == [
            "claims.json",
            "index.html",
            "meta.json",
        ]


class FailingStream(io.StringIO):
    """Standard output that takes `room` characters, then fails with `error` (isatty as
    told: a terminal that goes away, a pipe closed by its reader, a full disk)."""

    def __init__(self, error: OSError, room: int = 0, tty: bool = False):
        super().__init__()
        self.error, self.room, self.tty = error, room, tty

    def write(self, text: str) -> int:
        if self.tell() + len(text) > self.room:
            raise self.error
        return super().write(text)

    def isatty(self) -> bool:
        return self.tty


PIPE_CLOSED = BrokenPipeError(errno.EPIPE, "Broken pipe")
DISK_FULL = OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize(
    ("error", "code", "err"),
    [
        (PIPE_CLOSED, 0, ""),
        (DISK_FULL, 1, "infonorm: error: standard output: No space left on device\n"),
    ],
    ids=["closed pipe", "full disk"],
)
def test_fit_output_that_fails(error, code, err, tmp_path, monkeypatch, capsys):
    # the fit is the output: lost to a reader that stopped reading (| head), fine; else, not
    (tmp_path / "c.txt").write_text("1\n2\n")
    for json_flag in ([], ["--json"]):
        monkeypatch.setattr(sys, "stdout", FailingStream(error, room=10))
        assert cli.main(["fit", str(tmp_path / "c.txt"), *json_flag]) == code
        assert capsys.readouterr().err == err


def test_a_terminal_that_goes_away_stops_nothing(claims, monkeypatch, capsys):
    # a terminal: the progress bar draws, then the terminal is gone (EIO) halfway
    monkeypatch.setattr(sys, "stdout", FailingStream(OSError(errno.EIO, "I/O error"), 200, True))
    assert cli.main(["reproduce", "--out", "r"]) == 1  # P3.c's check broke, as it should
    assert capsys.readouterr().err == (
        "infonorm: warning: standard output failed (I/O error); the report was written: "
        "r/index.html\n"
        "infonorm: error: checks failed to run: P3.c\n"
    )
    assert [e["id"] for e in json.loads(Path("r/claims.json").read_text())] == [
        "P1.a",
        "P2.b",
        "P3.c",
        "P3.d",
    ]


# ---------------------------------------------------------------------------- Ctrl-C at start


def _console_script() -> str:
    """The code pip's `infonorm` script runs: the entry point named in pyproject.toml."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    module, function = re.search(r'^infonorm = "([\w.]+):(\w+)"$', pyproject, re.M).groups()
    return f"from {module} import {function} as main\nsys.exit(main())"


INTERRUPTER = """
import os, signal, sys
class InterruptAt:
    # Ctrl-C, as if pressed at the moment module {name!r} starts to be imported
    def find_spec(self, name, path=None, target=None):
        if name == {name!r}:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, InterruptAt())
sys.argv[1:] = ["fit", "missing.txt"]
"""


def test_ctrl_c_at_any_moment_of_the_start_up_is_one_line(tmp_path):
    # torch: imported by `import infonorm`, before any code of the package can run; rich:
    # by the command line; infonorm.quiz.counts: by the command, once it runs
    moments = ("torch", "rich", "infonorm.quiz.counts")
    runs = {
        name: subprocess.Popen(
            [sys.executable, "-c", INTERRUPTER.format(name=name) + _console_script()],
            cwd=tmp_path,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        for name in moments
    }
    for name, run in runs.items():
        out, err = run.communicate(timeout=120)
        assert (run.returncode, out, err) == (130, "", "infonorm: error: interrupted\n"), name


def test_the_tally_names_a_refutation_that_follows_from_the_others():
    from types import SimpleNamespace

    from infonorm.quiz.terminal import tally

    def result(name, verdict):
        return SimpleNamespace(claim=SimpleNamespace(id=name), verdict=verdict)

    results = [result("P3.line3", "refuted"), result("P3.line4", "refuted")]
    results += [result("P3.line5", "confirmed"), result("P3.chain", "refuted")]
    first, _ = tally(results, "r/index.html", "r/claims.json", derived={"P3.chain"})
    assert first == (
        "4 claims checked: 1 confirmed, 3 refuted (P3.line3, P3.line4, "
        "P3.chain, which follows from them), 0 could not be checked."
    )


def test_real_ctrl_c_at_staggered_moments_of_a_run_is_one_line_or_nothing(tmp_path):
    # a real SIGINT lands wherever the process is, inside an extension module's
    # initialization too, where it used to come out as a RecursionError or an abort
    (tmp_path / "counts.txt").write_text("1\n2\n3\n")
    script = "import sys\n" + _console_script()
    runs = []
    for moment in np.linspace(0.05, 2.5, 12):
        run = subprocess.Popen(
            [sys.executable, "-c", script, "fit", "counts.txt"],
            cwd=tmp_path,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        runs.append((moment, run))
    started = time.monotonic()
    for moment, run in runs:
        time.sleep(max(0.0, started + moment - time.monotonic()))
        run.send_signal(signal.SIGINT)
    for moment, run in runs:
        out, err = run.communicate(timeout=120)
        if run.returncode == 0:  # finished before the signal came
            assert (err, "Q_λ fitted to counts.txt" in out) == ("", True), moment
        else:
            assert (run.returncode, err) == (130, "infonorm: error: interrupted\n"), moment
