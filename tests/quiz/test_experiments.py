from dataclasses import asdict

import numpy as np
import pytest
import torch
from torch import nn

from infonorm.quiz.experiments import binary, digits, training


def test_separable_binary_labels_are_a_function_of_x_with_a_margin():
    x, y = binary.separable_binary(torch.Generator().manual_seed(0), n=301, margin=0.25)
    assert x.shape == (301, 2)
    distance = x @ torch.tensor(binary.NORMAL)
    assert distance.abs().min() > 0.25
    assert torch.equal(y, (distance > 0).long())
    assert 0 < y.sum() < 301


def test_outcomes():
    assert binary.outcome(1.0) == "predictor"
    assert binary.outcome(0.0) == "anti-predictor"
    assert binary.outcome(0.5) == "neither"


def test_recorded_steps_cover_the_start_and_the_end():
    steps = training.recorded_steps(200, 40)
    assert {0, 200} <= steps
    assert len(steps) == 40
    assert training.recorded_steps(3, 40) == {0, 1, 2, 3}


def test_unknown_objective_is_refused():
    with pytest.raises(ValueError, match="objective must be one of"):
        training.loss_function("hinge")


def test_train_records_both_objectives_and_lowers_its_own():
    x, y = binary.separable_binary(torch.Generator().manual_seed(1), n=64, margin=0.3)
    for objective in training.OBJECTIVES:
        torch.manual_seed(0)
        model = nn.Linear(2, 2)
        curve = training.train(model, x, y, objective, steps=30, lr=0.1, points=7)
        assert curve.steps[0] == 0
        assert curve.steps[-1] == 30
        assert len(curve.mutual_information) == len(curve.cross_entropy) == len(curve.steps)
        if objective == "mmi":
            assert curve.mutual_information[-1] > curve.mutual_information[0]
        else:
            assert curve.cross_entropy[-1] < curve.cross_entropy[0]


@pytest.fixture(scope="module")
def binary_runs():
    return binary.run_binary(6, seed=3, steps=150)


def test_binary_runs_are_deterministic_given_the_seed(binary_runs):
    again = binary.run_binary(6, seed=3, steps=150)
    assert [asdict(r) for r in again.runs] == [asdict(r) for r in binary_runs.runs]


def test_binary_runs_share_initializations_and_end_as_the_quiz_says(binary_runs):
    runs = binary_runs.runs
    assert len(runs) == 12
    assert binary_runs.counts("cross_entropy") == {
        "predictor": 6,
        "anti-predictor": 0,
        "neither": 0,
    }
    mmi = binary_runs.counts("mmi")
    assert mmi["neither"] == 0
    for run in runs:
        if run.objective == "mmi":
            assert run.mutual_information == pytest.approx(binary_runs.H_y, rel=0.05)
        if run.outcome == "anti-predictor":
            assert run.cross_entropy > 5


def test_first_runs_do_not_depend_on_how_many_seeds_follow(binary_runs):
    fewer = binary.run_binary(2, seed=3, steps=150)
    assert [asdict(r) for r in fewer.runs] == [asdict(r) for r in binary_runs.runs[:4]]


def test_digits_split_is_stratified_and_standardized():
    x_train, y_train, x_test, y_test = digits.digits_split(0)
    assert x_train.shape[1] == x_test.shape[1] == 64
    assert len(y_train) + len(y_test) == 1797
    assert set(y_test.tolist()) == set(range(10))
    assert x_train.mean(0).abs().max() < 1e-5


def test_digits_runs_keep_confusions_and_relabelings():
    experiment = digits.run_digits(1, seed=0, steps=60)
    assert [run.objective for run in experiment.runs] == list(training.OBJECTIVES)
    for run in experiment.runs:
        confusion = np.array(run.confusion)
        matched = np.array(run.confusion_matched)
        assert confusion.shape == matched.shape == (10, 10)
        assert confusion.sum() == experiment.test_size
        # the relabeled confusion holds the matched accuracy on its diagonal
        assert np.trace(matched) / experiment.test_size == pytest.approx(run.matched_accuracy)
        assert np.trace(confusion) / experiment.test_size == pytest.approx(run.raw_accuracy)
        assert run.matched_accuracy >= run.raw_accuracy
        assert len(set(run.mapping.values())) == len(run.mapping)
    ce = experiment.of("cross_entropy")[0]
    assert ce.raw_accuracy > 0.85
    assert all(ce.mapping[c] == c for c in ce.mapping)


def test_training_runs_on_one_thread_and_restores_the_count():
    outside = torch.get_num_threads()
    torch.set_num_threads(2)  # as on a two-core machine, whatever this one has
    seen = []
    x, y = binary.separable_binary(torch.Generator().manual_seed(2), n=16, margin=0.3)
    model = nn.Linear(2, 2)
    original = model.forward
    model.forward = lambda z: seen.append(torch.get_num_threads()) or original(z)
    try:
        training.train(model, x, y, "mmi", steps=3, lr=0.1)
        assert set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(outside)
