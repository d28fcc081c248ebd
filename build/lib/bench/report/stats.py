"""Whether a difference in test error is real or seed noise: the statistics of every comparison table.

The papers report single runs or mean ± std over a few seeds (He et al. Table 6: "best (mean ± std) over 5
runs" for ResNet-110), and the differences the suite measures are often tenths of a point. So each variant
is compared with its experiment's baseline (residual against plain at the same depth, ResNet-B/C/D against
the original, shortcut B/C against A, the deep stem against 7x7 (a CIFAR net's against 3x3), or the first spec of `bench compare`):

- per spec: n finished seeds, mean, sample std and the 95% confidence interval of the mean (Student's t);
- per variant: the difference of means (baseline minus variant: positive is better, errors fall), its 95%
  confidence interval with Welch's standard error and Welch-Satterthwaite degrees of freedom, and the two-
  sided p-value of Welch's t-test (scipy), which does not assume the two spreads are equal;
- a verdict in words: "better by 0.41 pp, 95% CI 0.12 to 0.70, n=3 vs 3" when the interval excludes zero,
  "within seed noise" when it does not, and "no claim can be made" with fewer than two seeds a side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A spec's final test errors over its seeds."""

    n: int
    mean: float
    std: float | None  # sample std (ddof=1); None below two seeds
    low: float | None  # 95% confidence interval of the mean
    high: float | None


@dataclass(frozen=True)
class Difference:
    """Baseline error minus variant error, in points: positive means the variant is better."""

    gain: float
    low: float | None
    high: float | None
    p_value: float | None
    n_variant: int
    n_baseline: int

    @property
    def claimable(self) -> bool:
        return self.low is not None

    @property
    def verdict(self) -> str:
        counts = f"n={self.n_variant} vs {self.n_baseline}"
        if not self.claimable:
            return f"no claim can be made: fewer than 2 seeds a side ({counts})"
        interval = f"95% CI {self.low:.2f} to {self.high:.2f}, p={self.p_value:.2g}, {counts}"
        if self.low > 0:
            return f"better by {self.gain:.2f} pp ({interval})"
        if self.high < 0:
            return f"worse by {-self.gain:.2f} pp ({interval})"
        return f"within seed noise: {self.gain:+.2f} pp ({interval})"


def estimate(errors) -> Estimate:
    values = np.asarray(list(errors), dtype=float)
    n = len(values)
    if n == 0:
        return Estimate(0, math.nan, None, None, None)
    mean = float(values.mean())
    if n < 2:
        return Estimate(n, mean, None, None, None)
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * std / math.sqrt(n)
    return Estimate(n, mean, std, mean - half, mean + half)


def difference(variant_errors, baseline_errors) -> Difference:
    """Welch's comparison of two specs' seeds (see the module's docstring)."""
    variant, baseline = np.asarray(list(variant_errors), float), np.asarray(list(baseline_errors), float)
    gain = float(baseline.mean() - variant.mean()) if len(variant) and len(baseline) else math.nan
    if len(variant) < 2 or len(baseline) < 2:
        return Difference(gain, None, None, None, len(variant), len(baseline))
    share_v, share_b = variant.var(ddof=1) / len(variant), baseline.var(ddof=1) / len(baseline)
    standard_error = math.sqrt(share_v + share_b)
    if standard_error == 0:  # identical seeds on both sides: the difference is exact
        return Difference(gain, gain, gain, 0.0 if gain else 1.0, len(variant), len(baseline))
    dof = (share_v + share_b) ** 2 / (share_v ** 2 / (len(variant) - 1) + share_b ** 2 / (len(baseline) - 1))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, dof)) * standard_error
    # Welch's two-sided test, as scipy.stats.ttest_ind(equal_var=False) computes it, without its warning about
    # nearly identical samples (short runs often end on the same error on every seed)
    p_value = float(2 * stats.t.sf(abs(gain) / standard_error, dof))
    return Difference(gain, gain - half, gain + half, p_value, len(variant), len(baseline))
