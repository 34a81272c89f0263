"""Benchmark statistics against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from rlgru.bench.stats import (
    aggregate_iqm,
    iqm,
    normalised,
    probability_of_improvement,
    stratified_bootstrap_ci,
)


def test_iqm_is_the_mean_of_the_middle_half() -> None:
    assert iqm(np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])) == pytest.approx((2 + 3 + 4 + 5) / 4)
    assert iqm(np.array([7.0])) == 7.0


def test_aggregate_iqm_pools_runs_across_tasks() -> None:
    scores = {"a": np.array([0.0, 1.0]), "b": np.array([2.0, 3.0])}
    assert aggregate_iqm(scores) == pytest.approx(1.5)


def test_probability_of_improvement_counts_pairs_and_half_ties() -> None:
    x = {"a": np.array([1.0, 3.0]), "b": np.array([5.0])}
    y = {"a": np.array([2.0, 3.0]), "b": np.array([5.0])}
    # task a: pairs (1>2 no, 1>3 no, 3>2 yes, 3=3 half) -> 1.5/4; task b: tie -> 0.5
    assert probability_of_improvement(x, y) == pytest.approx((1.5 / 4 + 0.5) / 2)
    assert probability_of_improvement(y, x) == pytest.approx(1 - probability_of_improvement(x, y))


def test_bootstrap_interval_contains_point_and_collapses_for_constant_runs() -> None:
    constant = {"a": np.full(5, 2.0), "b": np.full(5, 4.0)}
    assert stratified_bootstrap_ci(aggregate_iqm, constant, n_resamples=200) == pytest.approx((3.0, 3.0, 3.0))
    noisy = {"a": np.array([0.0, 1.0, 2.0, 3.0, 10.0])}
    point, low, high = stratified_bootstrap_ci(aggregate_iqm, noisy, n_resamples=500)
    assert low <= point <= high and low < high


def test_bootstrap_resamples_each_algorithm_within_tasks() -> None:
    better = {"a": np.array([5.0, 6.0, 7.0])}
    worse = {"a": np.array([1.0, 2.0, 3.0])}
    point, low, high = stratified_bootstrap_ci(probability_of_improvement, better, worse, n_resamples=300)
    assert point == low == high == 1.0


def test_normalised_maps_memoryless_to_zero_and_optimum_to_one() -> None:
    np.testing.assert_allclose(normalised(np.array([0.5, 1.0, 0.75]), 0.5, 1.0), [0.0, 1.0, 0.5])
    with pytest.raises(ValueError):
        normalised(np.array([1.0]), 1.0, 1.0)
