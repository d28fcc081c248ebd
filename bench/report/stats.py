"""Whether a difference in test error is real or seed noise: the statistics of every comparison table.

The papers report single runs or mean ± std over a few seeds (He et al. Table 6: "best (mean ± std) over 5
runs" for ResNet-110), and the differences the suite measures are often tenths of a point. So each variant
is compared with its experiment's baseline (residual against plain at the same depth, ResNet-B/C/D against
the original, shortcut B/C against A, the deep stem against 7x7 (a CIFAR net's against 3x3), or the first spec of `bench compare`):

- per spec: n finished seeds, mean, sample std and the 95% confidence interval of the mean (Student's t);
- per variant: the difference of means (baseline minus variant: positive is better, errors fall), its 95%
  confidence interval with Welch's standard error and Welch-Satterthwaite degrees of freedom, and the two-
  sided p-value of Welch's t-test (scipy), which does not assume the two spreads are equal;
- a verdict in words: "better by 0.41 pp (95% CI 0.12 to 0.70, n=3 vs 3)" when the interval excludes zero;
  when it does not, one of two different things: "no significant difference" with the largest difference the
  interval leaves possible ("rules out more than 0.35 pp"), where the difference seen is small beside the seed
  spread, or "inconclusive" with about how many more seeds a side would settle it, where the difference seen
  is large beside the spread but the seeds are too few to tell (`seeds_to_settle`: n=2 against 2 leaves a
  33-point gap inside its interval); "no claim can be made" with fewer than two seeds a side.

A net that ends near chance level (`near_chance`: the last 5% of the way from chance to perfect, 85.5% error
or more on 10 classes) learned too little for its differences to mean anything; the pages say so instead of
printing them as results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
POWER = 0.8  # the chance that `seeds_to_settle` seeds a side find a true difference as large as the one seen
PRACTICAL_SEEDS = 30  # a side; a difference that needs more is too small beside the spread to chase
CHANCE_MARGIN = 0.05  # near chance: accuracy within this share of the way from chance to perfect


def chance_error(num_classes: int) -> float:
    """The test error (%) of guessing: 90% on 10 classes."""
    return 100 * (1 - 1 / num_classes)


def near_chance(error: float | None, num_classes: int) -> bool:
    """Whether a mean test error (%) is so close to guessing that the net has learned next to nothing."""
    if error is None or num_classes < 2 or not math.isfinite(error):
        return False
    return error >= chance_error(num_classes) * (1 - CHANCE_MARGIN)


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
    variance_variant: float | None = None  # the seeds' sample variances, for `seeds_to_settle`
    variance_baseline: float | None = None

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
        more = self.seeds_to_settle()
        if more is not None:
            return (f"inconclusive: {self.gain:+.2f} pp, but the interval is wider than the difference ({interval}); "
                    f"train to --seeds {more} (about {more} a side) to tell a difference this large from seed noise")
        bound = max(abs(self.low), abs(self.high))
        return (f"no significant difference: {self.gain:+.2f} pp; the interval rules out more than {bound:.2f} pp "
                f"either way ({interval})")

    def seeds_to_settle(self) -> int | None:
        """The seeds a side (more than now) at which Welch's test would find a true difference as large as the one
        seen with probability POWER, at the spread seen: the smallest n with (t_0.975 + t_POWER) x standard error
        <= |gain|, on the Welch-Satterthwaite degrees of freedom of n against n. None when no n up to
        PRACTICAL_SEEDS does: then the difference seen is small beside the spread."""
        if self.variance_variant is None or not self.gain:
            return None
        total = self.variance_variant + self.variance_baseline
        if not total:
            return None
        squares = self.variance_variant ** 2 + self.variance_baseline ** 2
        for n in range(max(self.n_variant, self.n_baseline) + 1, PRACTICAL_SEEDS + 1):
            dof = (n - 1) * total ** 2 / squares
            reach = (stats.t.ppf(0.5 + LEVEL / 2, dof) + stats.t.ppf(POWER, dof)) * math.sqrt(total / n)
            if reach <= abs(self.gain):
                return n
        return None


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
    spreads = (float(variant.var(ddof=1)), float(baseline.var(ddof=1)))
    if standard_error == 0:  # identical seeds on both sides: the difference is exact
        return Difference(gain, gain, gain, 0.0 if gain else 1.0, len(variant), len(baseline), *spreads)
    dof = (share_v + share_b) ** 2 / (share_v ** 2 / (len(variant) - 1) + share_b ** 2 / (len(baseline) - 1))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, dof)) * standard_error
    # Welch's two-sided test, as scipy.stats.ttest_ind(equal_var=False) computes it, without its warning about
    # nearly identical samples (short runs often end on the same error on every seed)
    p_value = float(2 * stats.t.sf(abs(gain) / standard_error, dof))
    return Difference(gain, gain - half, gain + half, p_value, len(variant), len(baseline), *spreads)
