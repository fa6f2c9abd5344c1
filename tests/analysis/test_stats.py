"""The statistics behind the stress-test figures, against values worked out by hand or by brute force."""

from __future__ import annotations

import itertools
import math
import statistics
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from botdrill.analysis import bootstrap_ci, mcnemar_exact, pass_hat_k

# -- McNemar ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (10, 2, 0.0386),  # 2 * (1 + 12 + 66) / 2**12, the textbook example
        (2, 10, 0.0386),
        (6, 0, 0.03125),  # 2 / 2**6
        (1, 0, 1.0),
        (5, 5, 1.0),  # the doubled tail passes 1 and is capped
        (0, 0, 1.0),  # no discordant pair: no evidence either way
        (30, 10, 0.0022),
    ],
)
def test_mcnemar_known_values(b: int, c: int, p: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(p, abs=5e-5)


def test_mcnemar_counts_every_outcome_at_least_as_extreme() -> None:
    for b, c in [(3, 7), (0, 4), (9, 8), (12, 1), (4, 4)]:
        n = b + c
        # Every sequence of n fair coin flips: those at least as far from n/2 as b is are as extreme.
        extreme = sum(abs(sum(s) - n / 2) >= abs(b - n / 2) for s in itertools.product((0, 1), repeat=n))
        assert mcnemar_exact(b, c) == pytest.approx(extreme / 2**n)


def test_mcnemar_refuses_negative_counts() -> None:
    with pytest.raises(ValueError, match="negative"):
        mcnemar_exact(-1, 3)


# -- pass^k -------------------------------------------------------------------------------------------


def test_pass_hat_k_known_values() -> None:
    assert pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)
    assert pass_hat_k(10, 5, 2) == pytest.approx(10 / 45)
    assert pass_hat_k(3, 3, 3) == 1.0
    assert pass_hat_k(3, 2, 3) == 0.0  # fewer successes than k: no k-subset is all successes
    assert pass_hat_k(5, 0, 1) == 0.0


def test_pass_hat_k_is_the_share_of_all_success_subsets() -> None:
    for n in range(1, 7):
        for c in range(n + 1):
            trials = [1] * c + [0] * (n - c)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(trials, k))
                brute = Fraction(sum(all(s) for s in subsets), len(subsets))
                assert pass_hat_k(n, c, k) == pytest.approx(float(brute), abs=1e-15)
                assert pass_hat_k(n, c, k) == math.comb(c, k) / math.comb(n, k)


def test_pass_hat_k_of_one_is_the_success_rate() -> None:
    assert all(pass_hat_k(n, c, 1) == pytest.approx(c / n) for n in range(1, 9) for c in range(n + 1))


@pytest.mark.parametrize(
    ("n", "c", "k", "match"), [(2, 1, 3, "undefined"), (3, 4, 1, "successes"), (3, 1, 0, "k")]
)
def test_pass_hat_k_refuses_what_is_undefined(n: int, c: int, k: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pass_hat_k(n, c, k)


# -- bootstrap ----------------------------------------------------------------------------------------

_DIFFS = [1] * 30 + [0] * 60 + [-1] * 10


def test_bootstrap_is_reproducible_for_a_seed_and_varies_between_seeds() -> None:
    first = bootstrap_ci(_DIFFS, seed=7)
    assert bootstrap_ci(_DIFFS, seed=7) == first
    assert bootstrap_ci(np.array(_DIFFS), seed=7) == first
    assert len({bootstrap_ci(_DIFFS, seed=s) for s in range(5)}) > 1


def test_bootstrap_interval_is_near_the_normal_one() -> None:
    low, high = bootstrap_ci(_DIFFS, n_boot=4000, seed=1)
    mean = statistics.fmean(_DIFFS)
    se = statistics.pstdev(_DIFFS) / math.sqrt(len(_DIFFS))
    assert low < mean < high
    assert low == pytest.approx(mean - 1.96 * se, abs=0.02)
    assert high == pytest.approx(mean + 1.96 * se, abs=0.02)


def test_a_higher_confidence_gives_a_wider_interval() -> None:
    narrow = bootstrap_ci(_DIFFS, confidence=0.5)
    wide = bootstrap_ci(_DIFFS, confidence=0.99)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_constant_differences_have_no_spread() -> None:
    assert bootstrap_ci([1, 1, 1, 1]) == (1.0, 1.0)
    assert bootstrap_ci([0]) == (0.0, 0.0)


def test_resampling_in_blocks_gives_the_same_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    diffs = list(np.random.default_rng(3).integers(-1, 2, size=700))
    whole = bootstrap_ci(diffs, seed=2)
    monkeypatch.setattr("botdrill.analysis._stats._CHUNK", 5000)  # 7 resamples per block
    assert bootstrap_ci(diffs, seed=2) == whole


@pytest.mark.parametrize(
    ("diffs", "kwargs", "match"),
    [
        ([], {}, "non-empty"),
        ([1, 0], {"confidence": 1.0}, "confidence"),
        ([1, 0], {"confidence": 0.0}, "confidence"),
        ([1, 0], {"n_boot": 0}, "n_boot"),
    ],
)
def test_bootstrap_refuses_bad_input(diffs: list[int], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bootstrap_ci(diffs, **kwargs)
