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

# `infonorm fit FILE --json` (CSV: `--column visits`) before (the whole file read at once)
# and after (in blocks, a histogram kept), each run alone under
# `flock /work/wt/bench.lock /usr/bin/time -f "%e s %M KB"`; the peak is the maximum RSS
SCALE_WHEN = "2026-12-01, load average 1.3–2.7"
SCALE = [
    ("4 lines", "4", "275 MB", "2.6 s", "278 MB", "2.7 s"),
    ("100 MB of counts", "49.75 M", "5.95 GB", "65 s", "312 MB", "5.9 s"),
    ("200 MB of counts", "99.5 M", "11.6 GB", "134 s", "312 MB", "8.6 s"),
    ("100 MB CSV, 2 columns", "25 M", "3.42 GB", "60 s", "319 MB", "4.8 s"),
]


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
        "`matched_accuracy` takes bfloat16 and float16 scores, negative and huge labels, "
        "tensors that require grad, and (B, 1) integer predictions as labels (a column of "
        "class indices; a (B, 1) float column is refused as ambiguous).",
        "",
        "Second derivatives (tests/layer_norm/test_operator.py, "
        "tests/mutual_information/test_mutual_information.py): `create_graph=True`, "
        "`torch.autograd.functional.hessian`, `gradgradcheck` and a gradient penalty give the "
        "float64 composite's values for `layer_norm` (both scopes, every activation, every "
        "backend) and `mutual_information` (logits and probabilities), never silent zeros; "
        "`mutual_information` with a group refuses `create_graph=True` with a RuntimeError "
        "that says so.",
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
        "`infonorm: error: --out … cannot be written: …`; `bench --out` writes its JSON through "
        "a file beside it, through a link (the link stays), with mode 0666 less the umask for "
        "a new file (0644 as usual) and the old mode for a replaced one; "
        "`bench --device cuda` without a CUDA device exits 1 with "
        "`infonorm: error: device 'cuda' asked for, but torch sees no CUDA device here`; "
        "`--seed` takes 0 to 2^63 − 1 (beyond, the claims' generators would repeat seed 0's).",
        "",
        "### The report folder (`reproduce --out DIR`)",
        "",
        "Tested in tests/quiz/test_cli_report.py, the signals and concurrent runs in real "
        "processes. Only the report's own files (index.html, claims.json, meta.json, "
        "figures/…) are ever written, replaced or removed: notes, data or a whole project in "
        "DIR stay as they are, `--out .` included. The report is written whole into a hidden "
        "folder inside DIR, then each file is renamed into place (so DIR itself, `.` or a "
        "mount point, is never moved), and the files that the previous report listed in its "
        "meta.json (`files`) and this one does not write are removed; a list naming anything "
        "outside the report's own names is not obeyed. A folder that is not a report but "
        "holds an index.html, claims.json, meta.json or figures is refused before any claim "
        "runs (table above). A link to a folder is written through and stays a link; a link "
        "to nowhere gets its folder. A run that fails (disk full), is interrupted (Ctrl-C, "
        "exit 130), or stopped by SIGTERM (143) or SIGHUP (129) removes its hidden folder and "
        "leaves the previous report as it was, with one line on stderr; a run killed outright "
        "(SIGKILL, the OOM killer) cannot, and the next run to write to DIR removes its hidden "
        "folder once no process holds it and it is a minute old. Four runs writing to "
        "one DIR at once all exit 0 and the last to finish wins: every file of the report "
        "comes from that run, nothing else is left. A file named like the report's that "
        "appears in a non-report DIR while the claims run is not overwritten (exit 1).",
        "",
        "### The terminal",
        "",
        "Tested in tests/quiz/test_cli_terminal.py. What is printed on stdout is best-effort: "
        "a reader that stops reading (`infonorm reproduce … | head -1`) or a full disk "
        "(`> /dev/full`) silences it and stops nothing else. `reproduce` still writes its "
        "report and exits as the claims say (0, or 1 if a check failed to run); a closed pipe "
        "goes unmentioned, any other failure gets one warning line on stderr. For `fit` and "
        "`bench`, whose output is their result, a closed pipe exits 0 and a full disk exits 1 "
        "with `infonorm: error: standard output: No space left on device`. Piped, `reproduce` "
        "prints a line as each claim starts (`[3/28] P1.b: …`) and one as it ends; it closes "
        "with a tally naming each refuted claim and each that could not be checked, and the "
        "report's path. The results are wrapped at the terminal's width (80 columns when "
        "piped) at spaces only, never inside a word. File names, column names and paths are "
        "printed as typed (`--column 'visits [/day]'`, `--out 'report[v2]'`): nothing is "
        "read as markup. Ctrl-C at any moment of the start-up, `import torch` included, "
        "prints `infonorm: error: interrupted` and exits 130 at once (the `infonorm` "
        "script's entry point takes SIGINT before `import infonorm`: an interrupt inside an "
        "extension module's initialization would otherwise come out as some other exception "
        "or an abort; Python's own start-up, the first tens of milliseconds, comes before "
        "it); a test sends real SIGINTs at twelve moments of a run. During a run, whatever "
        "exception an interrupt turns into is reported as the interruption.",
        "",
        "### What `fit` reads",
        "",
        "A count is a whole number from 0 to 1e12: ASCII digits with an optional sign (`-0` "
        "is 0), or a decimal whose value is exactly whole (`5.0`, `4.2e1`, `1e+05`, as "
        "spreadsheets and R write numbers; checked exactly, so `0.99999999999999999` and "
        "`1e-400` are refused rather than rounded). Spaces, tabs, form feeds and vertical "
        "tabs around it are ignored, blank lines skipped. Lines end at LF, CR LF or a lone "
        "CR and are numbered as an editor numbers them. With `--column`, the header is the "
        "first line that is not blank, and every row must have as many fields as the header. "
        "`fit -` reads standard input (named `<stdin>` in messages).",
        "",
        "### Awkward files that are read",
        "",
        "| input | counts read |",
        "|---|---|",
    ]
    for label, _argv, _files, counts in CLI_ACCEPTED:
        lines.append(f"| {label} | {', '.join(map(str, counts))} |")
    lines += [
        "",
        "## Scale: `infonorm fit` on a large file",
        "",
        "`fit` reads its file in blocks of 1 MiB and keeps only the counts' histogram, so its "
        "memory does not grow with the file (only with the number of distinct counts). "
        "Each block is parsed with NumPy, a CSV file's too (split at its commas) until its "
        "first quote, after which Python's csv module reads it row by row (as fast as that "
        "module is, in as little memory); lines NumPy cannot settle (a sign, an exponent, a "
        "stray character) take the exact rules one by one. Measured with `/usr/bin/time` "
        "on `infonorm fit FILE --json`, counts drawn from Q_0.63 (one or two digits a line; "
        "the CSV: `site,visits` rows), on 2 cores shared with other work "
        f"({SCALE_WHEN}); the peak is the maximum resident set size, which on the 4-line file "
        "is the start-up's (torch loaded):",
        "",
        "| file | lines | before: peak | before: wall | after: peak | after: wall |",
        "|---|---|---|---|---|---|",
    ]
    for row in SCALE:
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
