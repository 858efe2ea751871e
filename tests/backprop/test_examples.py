"""Every example derivation under examples/backprop/ gets the verdict it is written for."""

from pathlib import Path
from typing import NamedTuple

import pytest

from infonorm import backprop
from infonorm.quiz.claims import layer_norm as claims

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "backprop"


class Expected(NamedTuple):
    wrong: frozenset[int]  # the lines that do not hold
    inherited: dict[int, list[int]]  # line → the lines whose error it inherits, run in order
    chain: bool  # the lines in order give autograd's adjoints


RIGHT = Expected(frozenset(), {}, True)
EXPECTED = {
    # the quiz as printed: lines 3 and 4 (signs; σ'(h) for σ'(A h + B)), and lines 7, 8 read
    # their adjoints
    "layer_norm_printed.py": Expected(frozenset({3, 4}), {7: [3], 8: [4]}, False),
    "layer_norm_corrected.py": RIGHT,
    "layer_norm_combined.py": RIGHT,
    "softmax_cross_entropy.py": RIGHT,
    "softmax_cross_entropy_fused.py": RIGHT,
    "softmax_cross_entropy_wrong.py": Expected(frozenset({2}), {}, False),
    "batch_norm.py": RIGHT,
    "batch_norm_wrong.py": Expected(frozenset({8}), {}, False),
    "residual_gelu.py": RIGHT,
    "residual_gelu_wrong.py": Expected(frozenset({3}), {4: [3], 5: [3], 6: [3]}, False),
}


def test_every_example_is_listed():
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_verdicts(name):
    report = backprop.check(EXAMPLES / name)
    expected = EXPECTED[name]
    wrong = {line.update.number for line in report.lines if not line.holds_with_assertions}
    assert wrong == expected.wrong, report.summary
    inherited = {line.update.number: line.inherits_from for line in report.lines}
    assert {k: v for k, v in inherited.items() if v} == expected.inherited
    assert report.chain.holds == expected.chain
    assert report.holds == (not expected.wrong and expected.chain)
    # autograd itself agrees with finite differences of the whole
    assert report.finite_differences.holds


@pytest.mark.parametrize("right", ["softmax_cross_entropy.py", "batch_norm.py", "residual_gelu.py"])
def test_each_wrong_variant_differs_from_its_example_in_the_refuted_line_only(right):
    good = backprop.load(EXAMPLES / right)
    bad = backprop.load(EXAMPLES / right.replace(".py", "_wrong.py"))
    changed = {
        u.number for u, v in zip(good.updates, bad.updates, strict=True) if u.source != v.source
    }
    assert changed == EXPECTED[right.replace(".py", "_wrong.py")].wrong


@pytest.mark.parametrize("name", ["printed", "corrected", "combined"])
def test_the_quiz_examples_are_the_files_the_claims_check(name):
    packaged = Path(claims.resources.files(claims.DERIVATIONS) / f"layer_norm_{name}.py")
    assert (EXAMPLES / f"layer_norm_{name}.py").read_bytes() == packaged.read_bytes()
