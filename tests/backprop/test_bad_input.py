"""A derivation file that cannot be checked: one line naming the file's line, exit 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from infonorm import backprop
from infonorm.quiz.cli import main
from tests.backprop.derivations import TANH

# the derivation with relu imported, for the kink case
BASE = TANH.replace("import sum_over", "import relu, sum_over", 1)
# label: (what replaces what in BASE, the line named, words of the message)
CASES = {
    "syntax error": ("* (1 - y**2)", "* (1 - y**2", 17, "syntax error"),
    "unknown name in the forward": ("tanh(s)", "tanh(ss)", 11, "unknown name 'ss'"),
    "unknown name in the backward": ("s.grad * x", "s.grad * xx", 19, "unknown name 'xx'"),
    "a step read before it is defined": ("w * x)", "w * x) + y", 10, "before its step (line 11)"),
    "an update of a node not in the forward": ("    w.grad", "    q.grad", 19, "q is not an input"),
    "shapes that do not broadcast (forward)": (
        '{"x": "n", "w": "n"}',
        '{"x": (5,), "w": (4,)}',
        10,
        "shapes do not broadcast",
    ),
    "shapes that do not broadcast (backward)": (
        "s.grad * x",
        "s.grad * x * torch.ones(3)",
        19,
        "shapes do not broadcast",
    ),
    "NaN where the draws fall": ("w * x)", "w * x.sqrt())", 10, "not differentiable where"),
    "a kink under every draw": ("torch.tanh(s)", "relu(s - s)", 11, "kink of relu"),
    "a step autograd cannot differentiate": ("tanh(s)", "tanh(s.detach())", 11, "no derivative"),
    "a value that is not a float": ("s.grad * w\n", "s.grad * w > 0\n", 21, "torch.bool"),
    "no forward": ("def forward", "def forwards", None, "defines no forward()"),
    "no backward": ("def backward", "def backwards", None, "defines no backward()"),
    "no inputs": ("inputs =", "inputz =", None, "defines no inputs"),
    "an input over an unknown axis": ('"x": "n"', '"x": "m"', 6, "no axis 'm'"),
    "a line that reads no adjoint": ("s.grad * x", "x", 19, "reads no adjoint"),
    "an edge that is not in the graph": ("s.grad * x", "y.grad * x", 19, "y.grad cannot"),
    "a statement that is not an update": (
        '    "x.grad += s.grad w"',
        "    print(1)",
        20,
        "adjoint updates",
    ),
    "a forward statement that is not a step": ("    return y", "    y += 1", 12, "named steps"),
    "a step defined twice": ("    y = torch.tanh(s)", "    s = torch.tanh(s)", 11, "defined twice"),
    "an error in the file's own code": ("N = 5", "N = 5 / 0", 4, "ZeroDivisionError"),
    "a missing module": ("import torch", "import torchh", 1, "No module named"),
    "an assert that is not a == b": ("* w\n", "* w\n    assert x > 0\n", 22, "a == b"),
}


def _write(tmp_path: Path, label: str) -> Path:
    old, new, _, _ = CASES[label]
    assert old in BASE, label
    path = tmp_path / "derivation.py"
    path.write_text(BASE.replace(old, new, 1), encoding="utf-8")
    return path


def test_the_base_file_holds(tmp_path):
    path = tmp_path / "derivation.py"
    path.write_text(BASE, encoding="utf-8")
    assert backprop.check(path).holds


@pytest.mark.parametrize("label", sorted(CASES))
def test_a_bad_file_is_refused_naming_its_line(label, tmp_path):
    path = _write(tmp_path, label)
    _, _, line, words = CASES[label]
    with pytest.raises(backprop.DerivationError) as caught:
        backprop.check(path)
    assert caught.value.line == line
    assert words in caught.value.message
    assert str(caught.value).startswith(f"{path}:{line}: " if line else f"{path}: ")


@pytest.mark.parametrize("label", sorted(CASES))
def test_the_command_prints_one_line_and_exits_two(label, tmp_path, capsys):
    path = _write(tmp_path, label)
    code = main(["check-backprop", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"infonorm: error: {path}")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("kind", "words"),
    [("missing", "no such file"), ("folder", "is a folder"), ("binary", "not a UTF-8 text file")],
)
def test_a_file_that_cannot_be_read(kind, words, tmp_path, capsys):
    path = tmp_path / "derivation.py"
    if kind == "folder":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe\x00x")
    assert main(["check-backprop", str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err
    assert len(err.strip().splitlines()) == 1


def test_a_bad_file_in_a_real_process_shows_no_traceback(tmp_path):
    path = _write(tmp_path, "unknown name in the backward")
    run = subprocess.run(
        [sys.executable, "-m", "infonorm.quiz.cli", "check-backprop", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.strip() == f"infonorm: error: {path}:19: unknown name 'xx'"
