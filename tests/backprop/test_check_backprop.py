"""`infonorm check-backprop`: what it prints, its JSON and its exit status."""

import json
import re
from pathlib import Path

import pytest

from infonorm.quiz import check_backprop
from infonorm.quiz.cli import build_parser, main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "backprop"


def _run(capsys, *argv):
    code = main(["check-backprop", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_derivation_that_holds_exits_zero(capsys):
    code, out, err = _run(capsys, EXAMPLES / "layer_norm_corrected.py")
    assert (code, err) == (0, "")
    assert len(re.findall(r"^line \d \(layer_norm_corrected.py:\d+\) holds ", out, re.M)) == 8
    assert "8 of 8 lines hold" in out
    assert "give autograd's adjoints" in out


def test_the_quiz_as_printed_exits_one_naming_lines_three_and_four(capsys):
    code, out, _ = _run(capsys, EXAMPLES / "layer_norm_printed.py")
    assert code == 1
    assert "line 3 (layer_norm_printed.py:38) does not hold" in out
    assert "line 4 (layer_norm_printed.py:44) does not hold" in out
    assert "its error reaches line 7" in out
    assert "inherits the error of line 4" in out
    assert "6 of 8 lines hold (line 3 does not, line 4 does not)" in out
    # printed and true values of a refuted line, and the printed text of every line
    assert "printed " in out
    assert "true sigma.grad" in out
    assert r"\mu.grad += \sum_{t,i} \sigma.grad" in out


def test_json_for_machines(capsys):
    code, out, _ = _run(capsys, EXAMPLES / "residual_gelu_wrong.py", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["holds"] is False
    assert [line["number"] for line in report["lines"] if not line["holds"]] == [3]
    assert report["lines"][3]["inherits_from"] == [3]
    assert {"file_line", "printed", "code", "max_error", "value", "true"} <= set(report["lines"][0])


def test_json_has_no_infinity(tmp_path, capsys):
    source = (
        (EXAMPLES / "residual_gelu.py")
        .read_text()
        .replace("b.grad += z.grad.sum(0)", "b.grad += z.grad")
    )
    path = tmp_path / "wrong_shape.py"
    path.write_text(source)
    code, out, _ = _run(capsys, path, "--json")
    assert code == 1
    line = json.loads(out)["lines"][4]
    assert line["max_error"] is None
    assert "shape (4, 3)" in line["reason"]


def test_draws_and_seed(capsys):
    code, out, _ = _run(capsys, EXAMPLES / "batch_norm.py", "--draws", "1", "--seed", "7", "--json")
    assert code == 0
    assert json.loads(out)["draws"] == 1


@pytest.mark.parametrize("argv", [["--draws", "0"], ["--seed", "-1"], ["--draws", "x"], []])
def test_bad_arguments_exit_two(argv, capsys):
    file = [] if not argv else [str(EXAMPLES / "batch_norm.py")]
    code = main(["check-backprop", *file, *argv])
    assert code == 2
    assert capsys.readouterr().err.startswith("infonorm: error:")


def test_help_says_the_file_is_run_as_python():
    commands = next(a for a in build_parser()._actions if a.dest == "command")
    text = commands.choices["check-backprop"].format_help()
    assert "not a sandbox" in " ".join(text.split())
    assert "exit 0" in " ".join(check_backprop.DESCRIPTION.split()).lower()
