import json
import subprocess
import sys

import pytest

from infonorm.quiz.cli import main
from infonorm.quiz.counts import read_counts


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_reproduce_writes_claims_and_page(tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, _ = _run(capsys, "reproduce", "--only", "P1", "--quick", "--out", str(out))
    assert code == 0
    entries = json.loads((out / "claims.json").read_text())
    assert {e["id"] for e in entries} >= {"P1.a", "P1.b", "P1.c"}
    for entry in entries:
        assert {
            "id",
            "problem",
            "statement",
            "verdict",
            "expected",
            "measured",
            "reference",
        } <= set(entry)
        assert entry["verdict"] == "confirmed"
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == 0
    assert meta["quick"] is True
    assert "P1.a" in (out / "index.html").read_text()
    assert "P1.a" in stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["reproduce", "--only", "P9"],
        ["reproduce", "--only", ""],
        ["reproduce", "--seed", "-1"],
        ["reproduce", "--seed", "x"],
        ["reproduce", "--bogus"],
        ["fit"],
        ["bench", "--op", "softmax"],
        [],
    ],
)
def test_bad_arguments_exit_two_with_one_line(argv, capsys):
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("infonorm: error:")


def test_reproduce_refuses_an_out_path_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = _run(capsys, "reproduce", "--only", "P1", "--quick", "--out", str(target))
    assert code == 2
    assert "is a file" in err


def test_fit_text_file(tmp_path, capsys):
    path = tmp_path / "counts.txt"
    path.write_text("0\n1\n2\n\n3\n4\n")
    code, out, _ = _run(capsys, "fit", str(path), "--json")
    assert code == 0
    fit = json.loads(out)
    assert fit["mu"] == 2.0
    assert fit["lambda"] == pytest.approx(2 / 3)
    assert fit["n"] == 5


def test_fit_csv_column_and_gradient_method(tmp_path, capsys):
    path = tmp_path / "visits.csv"
    path.write_text("name,visits\na,3\nb,5\nc,\nd,7\n")
    code, out, _ = _run(
        capsys, "fit", str(path), "--column", "visits", "--method", "gradient", "--json"
    )
    assert code == 0
    assert json.loads(out)["lambda"] == pytest.approx(5 / 6, abs=1e-6)


def test_fit_prints_a_table(tmp_path, capsys):
    path = tmp_path / "counts.txt"
    path.write_text("1\n2\n3\n")
    code, out, _ = _run(capsys, "fit", str(path))
    assert code == 0
    assert "0.666666667" in out
    assert "total variation" in out


@pytest.mark.parametrize(
    ("content", "column", "message"),
    [
        (None, None, "no such file"),
        (b"", None, "no counts"),
        (b"\x00\x01\x02binary", None, "not a text file"),
        (b"1\n\xfa", None, "not UTF-8"),
        (b"1\n2\nthree\n", None, "line 3|:3"),
        (b"1\n-2\n", None, "negative"),
        (b"1\n2.5\n", None, "not a whole number"),
        (b"1\nnan\n", None, "not a whole number"),
        (b"1\n" + b"9" * 30 + b"\n", None, "1e12"),
        (b"a,b\n1,2\n", "c", "no column 'c'"),
        (b"a,b\n1,2\n", None, "--column"),
    ],
)
def test_fit_rejects_bad_files_with_one_line(tmp_path, capsys, content, column, message):
    path = tmp_path / (
        "data.csv" if (column or (content or b"").startswith(b"a,b")) else "counts.txt"
    )
    if content is not None:
        path.write_bytes(content)
    argv = ["fit", str(path)] + (["--column", column] if column else [])
    code, _, err = _run(capsys, *argv)
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert __import__("re").search(message, err), err


def test_fit_rejects_a_folder(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        read_counts(tmp_path)


def test_module_entry_point_runs_without_traceback(tmp_path):
    missing = tmp_path / "missing.txt"
    result = subprocess.run(
        [sys.executable, "-m", "infonorm", "fit", str(missing)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "no such file" in result.stderr


def test_bench_out_is_rewritten_after_each_case(tmp_path, capsys, monkeypatch):
    from infonorm.quiz.bench import layer_norm as bench_layer_norm

    monkeypatch.setattr(bench_layer_norm, "QUICK_SHAPES", ((2, 16, 32), (3, 5, 7)))
    out = tmp_path / "bench.json"
    seen = []
    original = json.dumps

    def spy(record, **kwargs):
        seen.append(len(record["rows"]))
        return original(record, **kwargs)

    monkeypatch.setattr(json, "dumps", spy)
    code, _, _ = _run(capsys, "bench", "--op", "layer_norm", "--quick", "--out", str(out))
    assert code == 0
    cases = len(bench_layer_norm.CASES) * 2
    assert seen == list(range(1, cases + 1))  # after each case but the last, then the run
    record = json.loads(out.read_text())
    assert record["command"] == f"infonorm bench --op layer_norm --quick --out {out}"
    assert len(record["rows"]) == cases
    assert record["environment"]["processor"]


def test_bench_table_keeps_every_figure_when_the_output_is_not_a_terminal(capsys, monkeypatch):
    # piped or redirected output has no width: the table must not be cut to 80 columns
    from infonorm.quiz.bench import layer_norm as bench_layer_norm

    monkeypatch.setattr(bench_layer_norm, "QUICK_SHAPES", ((2, 16, 32),))
    code, stdout, _ = _run(capsys, "bench", "--op", "layer_norm", "--quick")
    assert code == 0
    assert "…" not in stdout
    assert "ours / nn.LayerNorm + activation" in " ".join(stdout.split())
