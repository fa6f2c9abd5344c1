"""The statistics behind the stress-test figures: pure functions of counts and differences, no I/O.

Exact where it is cheap to be: binomial sums and pass^k use integer arithmetic (`math.comb`) and round once,
at the end. The bootstrap draws from a seeded `numpy.random.Generator`, so an interval is the same on every
machine for the same seed and data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

_CHUNK = 1_000_000
"""At most this many resampled values are held at once (the bootstrap draws its resamples in blocks)."""


def pass_hat_k(n: int, c: int, k: int) -> float:
    """The chance that `k` trials drawn without replacement from `n`, of which `c` succeeded, all succeed.

    This is tau-bench's unbiased pass^k estimate for one task, `C(c, k) / C(n, k)`.

    >>> pass_hat_k(4, 2, 2)
    0.16666666666666666

    Raises:
        ValueError: `k < 1`, `n < k` (pass^k is undefined with fewer trials than `k`), or `c` outside
            `0..n`.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if n < k:
        raise ValueError(f"pass^{k} is undefined for a task with {n} trials (fewer than k)")
    if not 0 <= c <= n:
        raise ValueError(f"successes must be between 0 and the {n} trials, not {c}")
    return float(Fraction(math.comb(c, k), math.comb(n, k)))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for paired binary outcomes.

    Args:
        b: pairs that changed one way (a clean success that broke under a perturbation).
        c: pairs that changed the other way (a clean failure the perturbed twin got right).

    Under the null hypothesis both directions are equally likely, so `b` is Binomial(b + c, 1/2); the
    p-value doubles the smaller tail and is capped at 1. With no discordant pair there is no evidence
    either way, and the p-value is 1.

    >>> round(mcnemar_exact(10, 2), 4)
    0.0386
    """
    if b < 0 or c < 0:
        raise ValueError(f"counts must not be negative: b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


def bootstrap_ci(
    diffs: Sequence[float] | npt.NDArray[Any],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of paired differences.

    Each resample draws `len(diffs)` pairs with replacement (a pair's difference, e.g. clean success minus
    perturbed success, travels as one unit, which is what makes the bootstrap paired), and the interval is
    the `(1 - confidence) / 2` and `(1 + confidence) / 2` quantiles of the resampled means.

    Args:
        diffs: one difference per pair; order matters for reproducibility, so pass them in a stable order.
        n_boot: number of resamples.
        seed: seed of the `numpy.random.Generator`; the same seed and data give the same interval.
        confidence: the interval's nominal coverage, strictly between 0 and 1.

    Raises:
        ValueError: no differences, `n_boot < 1`, or `confidence` outside (0, 1).

    >>> bootstrap_ci([1, 1, 1])
    (1.0, 1.0)
    """
    values = np.asarray(diffs, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("bootstrap_ci needs a non-empty one-dimensional sequence of differences")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, not {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, not {confidence}")
    rng = np.random.default_rng(seed)
    n = values.size
    block = max(1, _CHUNK // n)
    means = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, block):
        stop = min(n_boot, start + block)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)
