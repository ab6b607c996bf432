"""Seeds as a sample: a mean with its 95% Student-t interval, and whether two losses differ.

A comparison over a handful of seeds needs its uncertainty said with it: the interval is
mean ± t(0.975, n-1) · s / √n (s the sample standard deviation of n seeds), and two rows
are "distinguishable at this budget" when Welch's t-test (unequal variances) gives p < 0.05.
scipy's Student t and Welch test; nothing hand-written but the wording.
"""

from __future__ import annotations

import math
import statistics

INTERVAL = ("mean ± half-width of the 95% Student-t interval over seeds "
            "(t(0.975, n−1) · s/√n)")
TEST = "Welch's t-test (unequal variances), two-sided, p < 0.05"


def interval(values: list[float]) -> tuple[float, float | None]:
    """The mean and the half-width of its 95% t-interval (None for one value)."""
    from scipy import stats

    mean = statistics.mean(values)
    if len(values) < 2:
        return mean, None
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, float(half)


def cell(values: list[float], percent: bool = False) -> str:
    """``0.312 ± 0.041`` (mean ± t half-width), one value alone, ``–`` without any; a share
    (``percent``) as ``0.96% ± 0.31%``."""
    if not values:
        return "–"
    if percent:
        values = [100 * v for v in values]
    if len(set(values)) == 1:  # one run, or the same floor repeated in every run
        return f"{values[0]:.2f}%" if percent else f"{values[0]:.4g}"
    mean, half = interval(values)
    return f"{mean:.2f}% ± {half:.2f}%" if percent else f"{mean:.4g} ± {half:.2g}"


def verdict(name_a: str, a: list[float], name_b: str, b: list[float], metric: str,
            lower_is_better: bool = True) -> str:
    """One plain line: can these two rows' ``metric`` over seeds be told apart?"""
    from scipy import stats

    means = f"{metric} {statistics.mean(a):.4g} vs {statistics.mean(b):.4g}"
    seeds = f"{len(a)} vs {len(b)} seeds"
    if len(a) < 2 or len(b) < 2:
        return (f"{name_a} vs {name_b}: cannot tell ({means}, {seeds}): needs 2 or more "
                "seeds each (seed=0,1,2)")
    p = stats.ttest_ind(a, b, equal_var=False).pvalue
    if math.isnan(p):  # no spread in either: the test is undefined
        return f"{name_a} vs {name_b}: cannot tell ({means}, {seeds}): no spread over seeds"
    if p >= 0.05:
        return (f"{name_a} vs {name_b}: not distinguishable at this budget ({means}, "
                f"p = {p:.2g}, {seeds})")
    a_better = (statistics.mean(a) < statistics.mean(b)) == lower_is_better
    better = (name_a if a_better else name_b).split(" (")[0]  # the loss, without its recipe
    return (f"{name_a} vs {name_b}: distinguishable at this budget, {better} better "
            f"({means}, p = {p:.2g}, {seeds})")
