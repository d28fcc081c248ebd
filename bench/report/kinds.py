"""The report kinds an experiment of a suite can feed (`report = "..."` in a suite file), in one registry.

A `ReportKind` is everything the rest of the code needs to know about a kind: what its page shows and which
runs it expects (the words of `--help`, the suite validator's errors and the docs), the builder of its page
(pages.py), whether its experiments train anything (the bottleneck page is computed from the models), and its
baseline rule: which spec each variant of an experiment is tested against in the statistics table that ends
its page. The suite validator and the report builder both read `KINDS`, so a new kind is one entry here and
its page builder.

Baseline rules (the paper's baseline for each question): `AxisBaseline` compares a variant with the spec of
the same family and depth whose axis has the baseline's value (plain at each depth, option A, the original
ResNet-50 against its tweaks, the 7x7 stem, or the CIFAR nets' 3x3, the original unit, one group), the one that
differs from it in the fewest axes; `FirstSpec` compares every spec with the first one listed (`bench compare`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from . import pages, stats
from .pages import Table
from .runs import AXES

NO_CLAIM = ("One seed per spec: no claim of a difference can be made. Train with `--seeds 3` or more for "
            "confidence intervals and Welch's t-test.")


@dataclass(frozen=True)
class AxisBaseline:
    """Each variant against the spec of the same family and depth whose `axis` is one of `values`."""

    axis: str
    values: tuple

    def pairs(self, present: list[str], specs: dict[str, dict]) -> dict[str, str]:
        pairs = {}
        for spec in present:
            row = specs[spec]
            if row["family"] == "timm" or row[self.axis] in self.values:
                continue
            candidates = [other for other in present if specs[other][self.axis] in self.values
                          and (specs[other]["family"], specs[other]["depth"]) == (row["family"], row["depth"])]
            if candidates:  # the one that differs from the variant in the fewest axes
                pairs[spec] = min(candidates, key=lambda other: sum(
                    str(specs[other][name]) != str(row[name]) for name in AXES))
        return pairs


@dataclass(frozen=True)
class FirstSpec:
    """Every spec against the first one listed."""

    def pairs(self, present: list[str], specs: dict[str, dict]) -> dict[str, str]:
        return {spec: present[0] for spec in present[1:]} if present else {}


@dataclass(frozen=True)
class ReportKind:
    name: str
    shows: str  # what its page shows
    expects: str  # the runs it expects
    build: Callable[..., pages.Page]  # (experiment, summary, curves, out_dir, context) -> Page
    baseline: AxisBaseline | FirstSpec | None  # None: no statistics table
    trains: bool = True  # False: computed from the models; its experiments list no runs


KINDS: dict[str, ReportKind] = {kind.name: kind for kind in (
    ReportKind("depth", "Table 6 and Figure 6 analogs, error against depth beside the paper's CIFAR figures",
               "CIFAR nets (`resnetN`, `plainN`)", pages.depth_page, AxisBaseline("plain", (True,))),
    ReportKind("shortcuts", "options A/B/C/none beside Table 3's ImageNet figures",
               "one net with several `shortcut=` values", pages.shortcuts_page, AxisBaseline("shortcut", ("A",))),
    ReportKind("tweaks", "ResNet-B/C/D beside Bag of Tricks Table 5",
               "`resnet50`, `resnet50b`, `-c`, `-d` (or other depths)", pages.tweaks_page,
               AxisBaseline("tweak", ("none",))),
    ReportKind("stems", "7x7 against the deep stem", "pairs differing in `stem=`", pages.stems_page,
               AxisBaseline("stem", ("7x7", "3x3"))),  # 3x3: the CIFAR nets' own stem
    ReportKind("bottleneck", "Table 1 and Figure 5 analogs, computed from the models", "none (`runs = []`)",
               pages.bottleneck_page, None, trains=False),
    ReportKind("imagenet_depth", "Table 2 / Table 3 analog beside the paper's ImageNet top-1 errors",
               "ImageNet nets (`resnet18`-`152`, `plain18`/`34`)", pages.imagenet_depth_page,
               AxisBaseline("plain", (True,))),
    ReportKind("shortcut_designs", "Identity Mappings Table 1 analog: what the shortcut carries (scaling, gates, "
               "1x1 convs, dropout), with the paper's errors and its 'fail' (above 20%)",
               "one net with several `shortcut=` values (`scaled`, `exclusive_gate`, `shortcut_gate` with "
               "`gate_bias=`, `C`, `dropout`) and its plain twin", pages.shortcut_designs_page,
               AxisBaseline("shortcut", ("A",))),
    ReportKind("units", "Identity Mappings Table 2 / 3 analog: where BN and ReLU sit, by depth, with the paper's "
               "errors", "nets differing in `unit=` (original, bn_after_add, relu_before_add, relu_preact, preact)",
               pages.units_page, AxisBaseline("unit", ("original",))),
    ReportKind("wide", "width against depth (Wide ResNets): params, MACs and errors beside the published ones",
               "WRN presets (`wrn16_8`, `wrn28_10`, ...) and thin nets; the first spec is the baseline",
               pages.wide_page, FirstSpec()),
    ReportKind("cardinality", "ResNeXt Table 3 analog: cardinality x width at ResNet-50's cost, MACs against "
               "1 x 64d, beside the paper's ImageNet errors",
               "bottleneck nets differing in `groups=` and `base_width=` (`resnet50b`, `resnext50_32x4d`, ...)",
               pages.cardinality_page, AxisBaseline("groups", (1,))),
    ReportKind("compare", "the specs' costs and errors, statistics against the first spec, curves, final errors "
               "with 95% CIs; no published columns", "any specs: the one for your own questions",
               pages.compare_page, FirstSpec()),
)}


def baselines(experiment, specs: dict[str, dict]) -> dict[str, str]:
    """Each compared spec of the experiment and the baseline spec it is tested against (its kind's rule)."""
    rule = KINDS[experiment.report].baseline
    if rule is None:
        return {}
    return rule.pairs([spec for spec in experiment.runs + experiment.expensive if spec in specs], specs)


def comparison_table(experiment, summary: pd.DataFrame, num_classes: int = 10) -> tuple[Table | None, list[str]]:
    """Per compared spec: its seeds' estimate and its difference from its baseline, with the verdict; where both
    ended near chance level (stats.near_chance), the verdict says so instead of printing a difference."""
    specs = pages.by_spec(summary)
    pairs = baselines(experiment, specs)
    if not pairs:
        return None, []
    rows, shown = [], []
    for spec, baseline in pairs.items():
        mine, theirs = specs[spec]["test_errors"], specs[baseline]["test_errors"]
        own, base = stats.estimate(mine), stats.estimate(theirs)
        if not own.n or not base.n:
            verdict = "not comparable yet: " + ("no finished run" if not own.n else "no finished baseline run")
            difference = None
        else:
            difference = stats.difference(mine, theirs)
            verdict = difference.verdict
            if stats.near_chance(own.mean, num_classes) and stats.near_chance(base.mean, num_classes):
                verdict = chance_verdict((own.mean, base.mean), num_classes, (own.n, base.n))
        rows.append({"spec": spec, "baseline": baseline, "n": own.n, "test_error_mean": own.mean if own.n else None,
                     "test_error_std": own.std, "ci_low": own.low, "ci_high": own.high, "baseline_n": base.n,
                     "baseline_error_mean": base.mean if base.n else None,
                     "gain": difference.gain if difference else None, "gain_low": difference.low if difference else None,
                     "gain_high": difference.high if difference else None,
                     "p_value": difference.p_value if difference else None, "verdict": verdict})
        shown.append({"spec": f"`{spec}`", "against": f"`{baseline}`", "error % (ours)": _estimate_cell(own),
                      "baseline error %": _estimate_cell(base), "verdict": verdict})
    notes = [NO_CLAIM] if all(row["n"] < 2 or row["baseline_n"] < 2 for row in rows) else []
    return Table(f"{experiment.key}_statistics", "Differences from the baseline: 95% confidence intervals and "
                 "Welch's t-test (difference = baseline − variant error; positive is better)",
                 pd.DataFrame(rows), pd.DataFrame(shown)), notes


def chance_verdict(errors, num_classes: int, counts) -> str:
    shown = " and ".join(f"{error:.2f}%" for error in errors)
    return (f"not compared: both near chance level ({shown}; guessing is {stats.chance_error(num_classes):.0f}% on "
            f"{num_classes} classes; n={counts[0]} vs {counts[1]}): the runs learned too little for a difference to "
            f"mean anything; train longer")


def _estimate_cell(estimate: stats.Estimate) -> str:
    if not estimate.n:
        return "no finished run"
    if estimate.std is None:
        return f"{estimate.mean:.2f} (n=1)"
    return f"{estimate.mean:.2f} ± {estimate.std:.2f}, 95% CI {estimate.low:.2f} to {estimate.high:.2f} (n={estimate.n})"
