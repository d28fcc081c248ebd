"""Is a difference real: the statistics against hand-computed values, the baselines each report compares with,
the tables with one seed, and `bench compare` end to end on tiny data."""

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from bench import suite as suites
from bench.cli import main
from bench.report import kinds, stats
from bench.report.runs import aggregate, load_runs

# A 2 x 3 example worked by hand. variant 6.0, 6.5, 7.0: mean 6.5, std 0.5; baseline 7.0, 7.5, 8.5: mean 23/3,
# variance 7/12. Welch: se^2 = 0.25/3 + (7/12)/3 = 5/18, dof = (5/18)^2 / ((1/12)^2/2 + (7/36)^2/2) = 100/29,
# t(0.975, 100/29) = 2.96073 -> half-width 1.56044; t = (7/6) / sqrt(5/18) = 2.21359, two-sided p = 0.10207.
# The variant's own mean: t(0.975, 2) = 4.30265 -> 6.5 -/+ 4.30265 * 0.5 / sqrt(3) = 6.5 -/+ 1.24207.
VARIANT, BASELINE = [6.0, 6.5, 7.0], [7.0, 7.5, 8.5]


def test_estimate_of_three_seeds():
    estimate = stats.estimate(VARIANT)
    assert estimate.n == 3 and estimate.mean == 6.5 and estimate.std == pytest.approx(0.5)
    assert estimate.low == pytest.approx(6.5 - 1.24207, abs=1e-5)
    assert estimate.high == pytest.approx(6.5 + 1.24207, abs=1e-5)


def test_welch_difference_worked_by_hand():
    difference = stats.difference(VARIANT, BASELINE)
    assert difference.gain == pytest.approx(7 / 6)
    assert difference.low == pytest.approx(7 / 6 - 1.56044, abs=1e-5)
    assert difference.high == pytest.approx(7 / 6 + 1.56044, abs=1e-5)
    assert difference.p_value == pytest.approx(0.10207, abs=1e-5)
    # the difference is large beside the spread: more seeds would settle it (n=7: (2.22 + 0.88) x 0.345 <= 1.17)
    assert difference.verdict == ("inconclusive: +1.17 pp, but the interval is wider than the difference (95% CI "
                                  "-0.39 to 2.73, p=0.1, n=3 vs 3); train to --seeds 7 (about 7 a side) to tell a "
                                  "difference this large from seed noise")
    assert difference.seeds_to_settle() == 7


def test_welch_p_value_equals_scipys_ttest_with_unequal_counts():
    from scipy.stats import ttest_ind

    variant, baseline = [1.0, 2.0, 4.0, 8.0], [3.0, 3.5, 9.0]
    expected = ttest_ind(baseline, variant, equal_var=False).pvalue
    assert stats.difference(variant, baseline).p_value == pytest.approx(expected, rel=1e-12)


def test_a_clear_difference_and_one_seed():
    # std 0.1 on both sides: se = sqrt(0.02/3) = 0.08165, dof 4, t(0.975, 4) = 2.77645 -> +/- 0.22670
    better = stats.difference([5.0, 5.1, 5.2], [6.0, 6.1, 6.2])
    assert better.gain == pytest.approx(1.0) and better.low == pytest.approx(1.0 - 0.22670, abs=1e-5)
    assert better.p_value == pytest.approx(2.552e-4, rel=1e-3)  # t = 1 / 0.08165 = 12.247 on 4 dof
    assert better.verdict == "better by 1.00 pp (95% CI 0.77 to 1.23, p=0.00026, n=3 vs 3)"
    assert stats.difference([6.0, 6.1, 6.2], [5.0, 5.1, 5.2]).verdict.startswith("worse by 1.00 pp")
    alone = stats.difference([5.0], [6.0, 6.1])
    assert alone.gain == pytest.approx(1.05) and alone.low is None and alone.p_value is None
    assert alone.verdict == "no claim can be made: fewer than 2 seeds a side (n=1 vs 2)"


@pytest.mark.slow
def test_each_report_compares_with_its_papers_baseline():
    suite = suites.load("cifar10")
    runs = load_runs("/nonexistent", suites.expand(suite, "paper", 1.0, 1))
    summary = aggregate(runs, 10)
    specs = {row["spec"]: row for row in summary.to_dict("records")}
    pairs = {key: kinds.baselines(suite.experiments[key], specs) for key in ("depth", "shortcuts", "tweaks", "stems")}
    assert pairs["depth"] == {f"resnet{d}": f"plain{d}" for d in (20, 32, 44, 56, 110)}
    assert pairs["shortcuts"] == {"resnet32(shortcut=B)": "resnet32", "resnet32(shortcut=C)": "resnet32",
                                  "plain32": "resnet32", "resnet56(shortcut=B)": "resnet56",
                                  "resnet56(shortcut=C)": "resnet56", "plain56": "resnet56"}
    assert pairs["tweaks"] == {"resnet50b": "resnet50", "resnet50c": "resnet50", "resnet50d": "resnet50"}
    # ResNet-C is ResNet-B with the deep stem: its 7x7 twin is ResNet-B, not the original
    assert pairs["stems"] == {"resnet18c": "resnet18", "resnet50c": "resnet50b"}


def test_a_cifar_nets_deep_stem_compares_with_its_3x3_stem():
    experiment = suites.Experiment("stems", "t", "stems", ("resnet20", "resnet20(stem=deep)"))
    specs = {row["spec"]: row for row in aggregate(load_runs("/nonexistent", suites.expand(
        suites.Suite("s", "cifar10", Path("s.toml"), {"stems": experiment}, "paper"), "paper", 1.0, 1)),
        10).to_dict("records")}
    assert kinds.baselines(experiment, specs) == {"resnet20(stem=deep)": "resnet20"}


def comparison(errors: dict[str, list[float]]):
    experiment = suites.Experiment("compare", "t", "compare", tuple(errors))
    summary = pd.DataFrame([{"spec": spec, "test_errors": values} for spec, values in errors.items()])
    return kinds.comparison_table(experiment, summary)


def test_tables_with_one_seed_say_no_claim_can_be_made():
    table, notes = comparison({"resnet20": [8.1], "resnet20(shortcut=B)": [7.9]})
    assert notes == [kinds.NO_CLAIM] and "no claim of a difference can be made" in kinds.NO_CLAIM
    assert table.shown.loc[0, "verdict"] == "no claim can be made: fewer than 2 seeds a side (n=1 vs 1)"
    table, notes = comparison({"resnet20": BASELINE, "resnet20(shortcut=B)": VARIANT, "plain20": []})
    assert notes == []
    assert list(table.data.verdict) == [stats.difference(VARIANT, BASELINE).verdict,
                                        "not comparable yet: no finished run"]
    assert table.shown.loc[0, "error % (ours)"] == "6.50 ± 0.50, 95% CI 5.26 to 7.74 (n=3)"


@pytest.mark.slow
def test_compare_trains_what_is_missing_then_writes_the_page(tmp_path, tiny_cifar10, capsys):
    root, _ = tiny_cifar10
    argv = ["compare", "cifar(depth=8)", "cifar(depth=8,shortcut=B)", "--seeds", "2", "--recipe", "smoke",
            "--data-dir", str(root), "--results-dir", str(tmp_path), "--wandb", "disabled", "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "4 runs, 0 already done, 4 to train" in out
    verdict = next(line for line in out.splitlines() if line.startswith("  cifar(depth=8,shortcut=B) against cifar(depth=8): "))
    folder = next((tmp_path / "reports").glob("compare-cifar-depth-8-vs-cifar-depth-8-shortcut-B-*/smoke-x1"))
    table = pd.read_csv(folder / "compare_statistics.csv")
    assert list(table.n) == [2] and list(table.baseline_n) == [2]
    assert verdict.endswith(table.verdict[0]) and "n=2 vs 2" in verdict
    page = (folder / "compare.md").read_text()
    assert "Differences from the baseline" in page and "compare_curves.png" in page and "compare_errors.png" in page
    for name in ("compare_curves.png", "compare_errors.png"):
        assert Image.open(folder / name).size[0] > 400
    assert main(argv) == 0  # asked again: nothing to train
    assert "4 runs, 4 already done, 0 to train" in capsys.readouterr().out


def test_compare_mistakes_are_one_line(capsys):
    assert main(["compare", "resnet20", "resnet20(shortcut=A)"]) == 2
    assert capsys.readouterr().err.strip() == \
        "error: resnet20 is given twice (spec strings that name the same net count as one)"
    assert main(["compare", "resnet20"]) == 2
    assert "compare needs at least two specs" in capsys.readouterr().err


def test_no_difference_and_inconclusive_are_two_verdicts():
    # tight: five seeds a side within a tenth of a point; the interval bounds what the difference can be
    tight = stats.difference([7.0, 7.1, 7.05, 6.95, 7.02], [7.02, 7.08, 7.06, 6.99, 7.0])
    assert tight.seeds_to_settle() is None
    assert tight.verdict == ("no significant difference: +0.01 pp; the interval rules out more than 0.08 pp either "
                             "way (95% CI -0.07 to 0.08, p=0.85, n=5 vs 5)")
    # wide: the plain56 against plain20 at n=2; a 33-point gap is not seed noise, the seeds are too few
    wide = stats.difference([89.14, 75.21], [49.54, 49.64])
    assert wide.low < 0 < wide.high and wide.seeds_to_settle() == 3
    assert wide.verdict == ("inconclusive: -32.58 pp, but the interval is wider than the difference (95% CI -121.06 "
                            "to 55.89, p=0.13, n=2 vs 2); train to --seeds 3 (about 3 a side) to tell a difference "
                            "this large from seed noise")


def test_runs_near_chance_level_are_not_compared():
    assert stats.chance_error(10) == 90 and stats.near_chance(85.5, 10) and not stats.near_chance(85.4, 10)
    assert stats.near_chance(99.0, 1000) and not stats.near_chance(94.0, 1000)
    table, _ = comparison({"plain20": [90.1, 89.2], "plain56": [89.9, 91.0], "resnet20": [60.0, 61.0]})
    assert list(table.data.verdict[:1]) == [
        "not compared: both near chance level (90.45% and 89.65%; guessing is 90% on 10 classes; n=2 vs 2): the "
        "runs learned too little for a difference to mean anything; train longer"]
    assert table.data.verdict[1].startswith("better by")  # resnet20 learned: its difference stands
    # the depth pages' residual gain, and the banner of a page whose every run guessed
    from bench.report import banner, pages
    assert pages.residual_gain(90.5, 89.6, 10) == (None, "none: both near chance")
    assert pages.residual_gain(90.5, 60.0, 10) == (30.5, "30.50")
    summary = pd.DataFrame({"test_error_mean": [90.45, 89.65]})
    lines = banner("smoke", 1.0, summary, 10)
    assert lines[0].endswith("not comparable with the published columns.**\n")  # no "compare variants with each other"
    assert lines[1].startswith("> **Every run on this page ended near chance level (test errors 89.7 to 90.5%; "
                               "guessing is 90% on 10 classes)")
    assert len(banner("smoke", 1.0, pd.DataFrame({"test_error_mean": [90.4, 60.0]}), 10)) == 1
