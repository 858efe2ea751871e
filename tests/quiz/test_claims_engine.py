import math

import numpy as np
import pytest
import torch

from infonorm.quiz.claims import Claim, Context, select
from infonorm.quiz.claims.engine import (
    below,
    combine,
    evaluate,
    holds,
    jsonable,
    max_error,
    number,
    within,
)


def test_within_confirms_inside_tolerance_and_refutes_outside():
    assert within([1.0, 2.0], [1.0, 2.0 + 1e-10], 1e-9, reference="r").verdict == "confirmed"
    refuted = within([1.0, 2.0], [1.0, 2.1], 1e-9, reference="r")
    assert refuted.verdict == "refuted"
    assert refuted.details["max_error"] == pytest.approx(0.1)


def test_within_relative_scales_by_expected():
    assert within(1e6, 1e6 + 1, 1e-5, relative=True, reference="r").verdict == "confirmed"
    assert within(1e-6, 2e-6, 1e-5, relative=True, reference="r").verdict == "refuted"


def test_infinities_agree_only_with_the_same_infinity_and_nan_never_agrees():
    assert max_error([math.inf, 1.0], [math.inf, 1.0]) == 0.0
    assert max_error([math.inf], [-math.inf]) == math.inf
    assert max_error([1.0], [math.nan]) == math.inf


def test_within_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        within([1.0, 2.0], [1.0], 0.1, reference="r")


def test_combine_is_refuted_when_any_part_is():
    good = holds(True, expected=1, measured=1, reference="a")
    bad = holds(False, expected=1, measured=2, reference="b")
    assert combine([good, good], reference="both").verdict == "confirmed"
    combined = combine([good, bad], reference="both")
    assert combined.verdict == "refuted"
    assert [p["verdict"] for p in combined.details["parts"]] == ["confirmed", "refuted"]


def test_a_check_that_raises_is_recorded_as_error():
    def broken(ctx):
        raise RuntimeError("boom")

    result = evaluate(Claim("P1.x", "P1", "statement", broken), Context())
    assert result.verdict == "error"
    assert "RuntimeError: boom" in result.evidence.note
    assert result.to_dict()["verdict"] == "error"


def test_claim_rejects_unknown_problem():
    with pytest.raises(ValueError, match="problem"):
        Claim("P9.a", "P9", "s", lambda ctx: None)


def test_context_generators_depend_on_seed_and_salt_only():
    a = torch.rand(3, generator=Context(seed=1).generator("x"))
    b = torch.rand(3, generator=Context(seed=1).generator("x"))
    c = torch.rand(3, generator=Context(seed=1).generator("y"))
    d = torch.rand(3, generator=Context(seed=2).generator("x"))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, d)
    assert Context(seed=5).rng("s").integers(1 << 30) == Context(seed=5).rng("s").integers(1 << 30)


def test_context_shared_computes_once():
    calls = []
    ctx = Context()
    for _ in range(3):
        assert ctx.shared("k", lambda: calls.append(1) or 42) == 42
    assert calls == [1]


def test_context_track_reports_progress():
    seen = []
    ctx = Context(progress=lambda d, done, total: seen.append((d, done, total)))
    assert list(ctx.track(["a", "b"], "steps")) == ["a", "b"]
    assert seen == [("steps", 0, 2), ("steps", 1, 2), ("steps", 2, 2)]


def test_jsonable_encodes_tensors_arrays_and_non_finite_values():
    value = {
        "t": torch.tensor([1.0, math.inf]),
        "a": np.array([np.nan]),
        "i": np.int64(3),
        "n": (np.float32(0.5), -math.inf),
    }
    assert jsonable(value) == {"t": [1.0, "inf"], "a": ["nan"], "i": 3, "n": [0.5, "-inf"]}


def test_select_filters_by_problem_and_rejects_unknown():
    assert {c.problem for c in select(["P1"])} == {"P1"}
    with pytest.raises(ValueError, match="P7"):
        select(["P7"])
    ids = [c.id for c in select()]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------------------- per-part tolerances


def _dtype_parts(float64_error: float) -> list:
    """A float64 part checked at 1e-12 and a bfloat16 part checked at 2e-2."""
    return [
        within([1.0], [1.0 + float64_error], 1e-12, reference="r", label="float64"),
        within([1.0], [1.01], 2e-2, reference="r", label="bfloat16"),
    ]


def test_combine_keeps_each_parts_own_tolerance_and_error():
    combined = combine(_dtype_parts(1e-15), reference="both")
    checks = {c["label"]: c for c in combined.details["checks"]}
    assert checks["float64"]["tolerance"] == 1e-12
    assert checks["float64"]["max_error"] == pytest.approx(1e-15, abs=2e-16)
    assert checks["bfloat16"]["tolerance"] == 2e-2
    assert checks["bfloat16"]["max_error"] == pytest.approx(0.01)
    # the loosest tolerance is no headline for the float64 part
    assert combined.tolerance is None
    assert "max_error" not in combined.details
    assert "float64: largest difference" in combined.summary
    assert "(allowed 1e−12)" in combined.summary
    assert "bfloat16: largest difference 0.01 (allowed 0.02)" in combined.summary


def test_a_float64_part_outside_its_own_tolerance_is_refuted_and_named():
    combined = combine(_dtype_parts(1e-6), reference="both")  # far inside bfloat16's 0.02
    assert combined.verdict == "refuted"
    refuted = [c["label"] for c in combined.details["checks"] if c["verdict"] == "refuted"]
    assert refuted == ["float64"]
    assert "float64: largest difference 1e−6 (allowed 1e−12)" in combined.summary


def test_combine_flattens_nested_parts_with_both_labels():
    inner = combine(_dtype_parts(0.0), reference="r", label="soft predictions")
    outer = combine([inner, holds(True, expected=1, measured=1, reference="s")], reference="all")
    labels = [c["label"] for c in outer.details["checks"]]
    assert labels == ["soft predictions, float64", "soft predictions, bfloat16", ""]


def test_parts_sharing_a_tolerance_keep_it_as_the_headline():
    parts = [within([1.0], [1.0 + e], 1e-9, reference="r") for e in (1e-12, 3e-10)]
    combined = combine(parts, reference="r", over="2 populations")
    assert combined.tolerance == 1e-9
    assert combined.details["max_error"] == pytest.approx(3e-10)
    assert combined.summary == "largest difference 3e−10 (allowed 1e−9) on 2 populations"


def test_below_judges_an_error_measured_elsewhere():
    assert below(1e-11, 1e-10, reference="r").verdict == "confirmed"
    refuted = below(1e-9, 1e-10, reference="r", relative=True, label="float64")
    assert refuted.verdict == "refuted"
    assert refuted.summary == "largest relative difference 1e−9 (allowed 1e−10)"


def test_numbers_for_sentences():
    assert number(6.006e-16) == "6e−16"
    assert number(2.0148e-10) == "2e−10"
    assert number(0.0049) == "0.0049"
    assert number(math.inf) == "∞"
    assert number(-3.81) == "−3.8"
