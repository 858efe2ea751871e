"""Render docs/robustness.md from the robustness tables of the tests.

Each op's bad inputs are rows in `tests/<op>/cases.py` and the command line's in
`tests/quiz/cases.py`; the tests run every row, and `tests/test_robustness_page.py` checks
that the page says exactly what they check. After changing a row:

    .venv/bin/python scripts/robustness_page.py > docs/robustness.md
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.geometric.cases import CASES as GEOMETRIC  # noqa: E402
from tests.layer_norm.cases import CASES as LAYER_NORM  # noqa: E402
from tests.layer_norm.cases import LAYER_NORM_DTYPES  # noqa: E402
from tests.mutual_information.cases import CASES as MUTUAL_INFORMATION  # noqa: E402
from tests.mutual_information.cases import MUTUAL_INFORMATION_DTYPES  # noqa: E402
from tests.quiz.cases import CLI_ACCEPTED, CLI_CASES  # noqa: E402

API_CASES = [*GEOMETRIC, *LAYER_NORM, *MUTUAL_INFORMATION]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    text = _cell(text)
    if len(text) > 110:
        text = text[:110] + "…"
    return f"`{text}`" if "`" not in text else f"``{text}``"


def _dtype(d: torch.dtype) -> str:
    return str(d).removeprefix("torch.")


def render() -> str:
    lines = [
        "# Robustness: bad input and what it gets",
        "",
        "Generated from the tables `tests/<op>/cases.py` and `tests/quiz/cases.py` by "
        "`.venv/bin/python scripts/robustness_page.py > docs/robustness.md`; each op's "
        "`test_robustness.py` and `tests/quiz/test_cli_robustness.py` run every row, and "
        "`tests/test_robustness_page.py` checks that this page is up to date. "
        "A message is shown by its beginning (the test checks "
        "that the message starts so). Every error is raised before any work starts, but for "
        "the rows marked †: NaN and infinite logits are found in the sums of "
        "`mutual_information`'s forward pass (a check of their own would cost one more pass "
        "over the B × C logits); the error comes before any result or gradient.",
        "",
        "Conventions. Arguments of the wrong type get `TypeError`, of the wrong value, shape or "
        "device `ValueError`; each message names the argument. The counts given to "
        "`geometric.fit`, `empirical_cross_entropy` and `total_variation` (`samples`) are data, "
        "as read from a "
        "file by `infonorm fit`: whatever is wrong with them gets `ValueError`, the type "
        "included. The command line prints one "
        "line, `infonorm: error: …`, on stderr and exits 2 for usage errors, 1 for bad data "
        "(and for a destination that cannot be written), never with a traceback.",
        "",
        "## Library",
        "",
        "| function | bad input | exception | message begins with |",
        "|---|---|---|---|",
    ]
    for case in API_CASES:
        lines.append(
            f"| `{case.function}` | {_cell(case.bad_input)} | `{case.error.__name__}` "
            f"| {_code(case.prefix)}{' †' if case.from_forward else ''} |"
        )
    lines += [
        "",
        "### Accepted mixes of dtype, device, layout and gradients",
        "",
        "`layer_norm(x, A, B)`: statistics in float32 for half-precision x, in x's dtype "
        "otherwise; the output and x.grad have x's dtype, A.grad and B.grad their parameter's.",
        "",
        "| x | A, B | output | x.grad | A.grad, B.grad |",
        "|---|---|---|---|---|",
    ]
    for row in LAYER_NORM_DTYPES:
        lines.append(
            f"| {_dtype(row.x)} | {_dtype(row.params)} | {_dtype(row.y)} | {_dtype(row.dx)} "
            f"| {_dtype(row.dparams)} |"
        )
    lines += [
        "",
        "`mutual_information(input, target)`: sums in float32 for half-precision input, in "
        "input's dtype otherwise; label rows are cast to that dtype. No gradient flows into "
        "the target.",
        "",
        "| input | target | value | input.grad |",
        "|---|---|---|---|",
    ]
    for row in MUTUAL_INFORMATION_DTYPES:
        lines.append(
            f"| {_dtype(row.input)} | {row.target} | {_dtype(row.value)} | {_dtype(row.grad)} |"
        )
    lines += [
        "",
        "Also tested (tests/layer_norm/test_robustness.py): every `requires_grad` "
        "combination of x, A, B "
        "(only the inputs that need a gradient get one, each equal to the float64 reference; "
        "none: the output needs no grad), `torch.no_grad` and `torch.inference_mode`; "
        "non-contiguous x, A, B, expanded (stride 0) and channels-last x, transposed logits and "
        "strided targets give the contiguous results; zero-size leading dims give empty outputs "
        "and gradients; a layer with NaN or inf in x gives NaN in that layer only (no check: "
        "it would cost a device sync per call, and torch's own layer norm does the same); "
        "x, A, B all on the meta device give a meta output of x's shape, eps = 0 included; "
        "on a CUDA machine, x on CUDA with A or B on the CPU gets "
        "`ValueError: A is on cpu but x is on cuda:0: put both on one`, and logits on CUDA "
        "with labels on the CPU `ValueError: target is on cpu but input is on cuda:0`; "
        "geometric functions take Python numbers, NumPy values, and tensors of any integer "
        "or float dtype (computed in float64), keep a gradient through `lam`, and "
        "`total_variation` costs O(distinct counts), a count of 1e12 included.",
        "",
        "`mutual_information` also takes (tests/mutual_information/test_robustness.py, "
        "tests/mutual_information/test_properties.py): class indices of any integer dtype "
        "(uint8, int8, int16, int32, int64 give the same I and gradient; `entropies` and "
        "`mutual_information_reference` too); masked logits (−inf anywhere but in a whole "
        "row), with every kind of target: a finite I, finite gradients, 0 at the masked "
        "entries, equal to the reference on logits of −1e4 in their place; logits of ±100 in "
        "float32 and bfloat16, and ±3e38 in float32: finite and equal to the float64 "
        "reference; a target that requires grad (it is data: no gradient flows into it). "
        "`matched_accuracy` takes bfloat16 and float16 scores, negative and huge labels, and "
        "tensors that require grad.",
    ]
    lines += [
        "",
        "## Command line",
        "",
        "Run in a folder holding the files named; paths in messages are as given on the "
        "command line.",
        "",
        "| command | bad input | exit | stderr (one line) begins with |",
        "|---|---|---|---|",
    ]
    for case in CLI_CASES:
        lines.append(
            f"| `{case.command}` | {_cell(case.bad_input)} | {case.code} | {_code(case.line)} |"
        )
    lines += [
        "",
        "Also tested (tests/quiz/test_cli_robustness.py): a file that cannot be read "
        "(permission denied) exits 1 with `infonorm: error: c.txt: cannot be read "
        "(Permission denied)`; `reproduce --out` and `bench --out` are checked before any claim "
        "or benchmark runs, and a destination that cannot be written exits 1 with "
        "`infonorm: error: --out … cannot be written: …`; a report that fails while being "
        "written (disk full) exits 1 with one line and leaves the previous report as it was, "
        "with nothing beside it; `bench --out` writes its JSON through a file beside it; "
        "`bench --device cuda` without a CUDA device exits 1 with "
        "`infonorm: error: device 'cuda' asked for, but torch sees no CUDA device here`.",
        "",
        "### Awkward files that are read",
        "",
        "| input | counts read |",
        "|---|---|",
    ]
    for label, _argv, _files, counts in CLI_ACCEPTED:
        lines.append(f"| {label} | {', '.join(map(str, counts))} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
