"""The transcription of Problem 3's solution against the text it was transcribed from.

A refutation is only as good as the transcription of the printed line: each line's LaTeX in
the derivation files must be the solution's, with only the alignment marks removed. The
solution's text is copied into quiz1_problem3.md (a clean clone has no seed beside it);
the copy is checked against the seed itself when the seed sits beside the checkout.
"""

import re
from pathlib import Path

import pytest

from infonorm.quiz.claims import layer_norm as claims

COPY = Path(__file__).with_name("quiz1_problem3.md")
SEED = Path("shared") / "seed" / "quiz1-with-solutions.md"


def _seed() -> Path | None:
    """The seed beside the checkout (../shared/seed/, or beside a folder of worktrees)."""
    checkout = Path(__file__).resolve().parents[2]
    return next((p / SEED for p in checkout.parents if (p / SEED).is_file()), None)


def _copied_text() -> str:
    return COPY.read_text(encoding="utf-8").split("-->\n", 1)[1]


def _solution_blocks() -> list[str]:
    """The two aligned blocks of the solution: lines 1–8, then the combined equations."""
    solution = _copied_text().split("Solution:", 1)[1]
    return re.findall(r"\$\$(.*?)\$\$", solution, re.S)


def _equations(block: str) -> list[str]:
    r"""Each equation of an aligned block, with the alignment marks removed: the & of each
    row, the row breaks \\, and where an equation goes on over the next row (&\quad), the
    \right. and \left. that close and reopen its brackets across the break."""
    body = block.strip().removeprefix(r"\begin{aligned}").removesuffix(r"\end{aligned}")
    equations: list[str] = []
    for row in body.split(r"\\"):
        row = row.strip()
        if row.startswith(r"&\quad"):
            rest = row.removeprefix(r"&\quad").strip().removeprefix(r"\left.")
            equations[-1] = equations[-1].strip().removesuffix(r"\right.") + " " + rest
        else:
            assert row.count("&") == 1, row
            equations.append(row.replace("&", ""))
    return [" ".join(e.split()) for e in equations]


def test_the_copy_is_the_seed_text():
    seed = _seed()
    if seed is None:
        pytest.skip("no seed beside this checkout (../shared/seed/quiz1-with-solutions.md)")
    assert _copied_text() in seed.read_text(encoding="utf-8")


def test_the_copy_holds_the_eight_lines_and_the_three_combined_equations():
    printed, combined = _solution_blocks()
    assert len(_equations(printed)) == 8
    assert len(_equations(combined)) == 3


@pytest.mark.parametrize(("name", "block"), [("printed", 0), ("combined", 1)])
def test_each_line_is_transcribed_as_printed(name, block):
    transcribed = [u.printed for u in claims.derivation(name).updates]
    assert transcribed == _equations(_solution_blocks()[block])


def test_the_claims_report_the_transcribed_latex():
    printed, combined = (_equations(b) for b in _solution_blocks())
    for line, latex in zip((*claims.LINES, *claims.COMBINED), printed + combined, strict=True):
        report = claims.derivation(line.derivation)
        assert report.updates[line.number - 1].printed == latex, line.id


def test_the_corrected_lines_change_only_the_sign_and_the_argument_of_sigma_prime():
    printed = claims.derivation("printed").updates
    corrected = claims.derivation("corrected").updates
    changed = {u.number for u, v in zip(printed, corrected, strict=True) if u.source != v.source}
    assert changed == {3, 4}
    for u, v in zip(printed, corrected, strict=True):
        if u.number not in changed:
            assert (u.printed, u.source) == (v.printed, v.source)
    # the LaTeX and the code change together, and by nothing else
    line3, line4 = corrected[2], corrected[3]
    assert line3.printed == printed[2].printed.replace(r"= \sum", r"= -\sum").replace(
        r"\sigma'(h[t, i])", r"\sigma'(A[i]h[t, i] + B[i])"
    )
    assert line3.source == printed[2].source.replace("= sum_over", "= -sum_over").replace(
        "relu_prime(h)", "relu_prime(A * h + B)"
    )
    assert line4.printed == printed[3].printed.replace(r"= \sum", r"= -\sum")
    assert line4.source == printed[3].source.replace("= sum_over", "= -sum_over")
