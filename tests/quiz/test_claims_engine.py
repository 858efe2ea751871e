import math

import numpy as np
import pytest
import torch

from infonorm.quiz.claims import Claim, Context, select
from infonorm.quiz.claims.engine import combine, evaluate, holds, jsonable, max_error, within


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
