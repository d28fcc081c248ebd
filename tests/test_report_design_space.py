"""The follow-up papers' pages from synthetic run records: Identity Mappings Tables 1-3 (the `identity` suite),
Wide ResNets (the CIFAR suite's `wide`) and ResNeXt Table 3 (the Imagenette suite's `cardinality`), each with
the published column beside ours, the paper's "fail", and the statistics against its baseline."""

import pandas as pd
import pytest
from PIL import Image

from bench import suite as suites
from bench.commands.report import report_suite
from bench.cost import measure
from bench.records import RunRecord

# spec -> the final test error of seeds 0 and 1, or a status for a seed that did not finish
IDENTITY = {
    "resnet110": (6.5, 6.7), "plain110": ("diverged", "diverged"), "resnet110(shortcut=scaled)": (12.0, 12.6),
    "resnet110(shortcut=exclusive_gate)": (25.0, 27.0), "resnet110(shortcut=exclusive_gate,gate_bias=-6)": (8.6, 8.8),
    "resnet110(shortcut=C)": (12.1, 12.3), "resnet110(shortcut=dropout)": (19.0, 23.0),
    "resnet110(unit=preact)": (6.2, 6.4), "resnet110(unit=bn_after_add)": (8.0, 8.3),
    "resnet164": (5.9, 6.0), "resnet164(unit=preact)": (5.4, 5.5),
}


def fake_records(results, planned, outcomes, recipe, dataset):
    for run in planned:
        if run.spec not in outcomes:
            continue
        outcome = outcomes[run.spec][run.seed]
        record = RunRecord(results, run.run_id)
        record.write_config({"spec": run.spec, "recipe": {"name": recipe, "scale": 0.05, "iterations": 3200},
                             "dataset": dataset, "execution": {"device_name": "Test CPU", "precision": "fp32"}})
        error = 20.0 if outcome == "diverged" else outcome
        for iteration in (1600, 3200):
            record.append_metrics({"iteration": iteration, "train/error": error + 10 - iteration / 400,
                                   "test/error": error + 8 - iteration / 400})
        if outcome == "diverged":
            record.write_summary({"status": "diverged", "updated_at": "2026-12-02T10:00:00+00:00"})
        else:
            record.write_summary({"status": "finished", "test_error": outcome, "train_img_s": 500.0,
                                  "updated_at": "2026-12-02T10:00:00+00:00"})


def build(tmp_path, suite_name, outcomes, recipe, dataset, expensive=False):
    suite = suites.load(suite_name)
    fake_records(tmp_path, suites.expand(suite, recipe, 0.05, seeds=2, expensive=expensive), outcomes, recipe, dataset)
    return report_suite(suite_name, results_dir=tmp_path, recipe=recipe, scale=0.05, seeds=2, expensive=expensive,
                        wandb_mode="disabled")


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return build(tmp_path_factory.mktemp("identity"), "identity", IDENTITY, "identity",
                 {"name": "cifar10", "num_classes": 10})


@pytest.mark.slow
def test_table1_puts_each_design_beside_the_papers_and_says_fail_as_the_paper_does(identity):
    table = pd.read_csv(identity / "table1_shortcut_designs.csv").set_index("spec")
    assert len(table) == 10  # the suite's ten designs, in its order
    assert table.loc["resnet110(shortcut=exclusive_gate,gate_bias=-6)", "paper_error"] == 8.70
    assert table.loc["resnet110(shortcut=shortcut_gate,gate_bias=-6)", "paper_error"] == 6.91
    assert table.loc["resnet110(shortcut=C)", "paper_error"] == 12.22
    assert table.loc["plain110", "paper_outcome"] == "fail" and table.loc["plain110", "outcome"] == "fail"
    assert table.loc["resnet110(shortcut=exclusive_gate)", "outcome"] == "fail"  # mean 26.0 > 20
    assert table.loc["resnet110(shortcut=dropout)", "outcome"] == "fail"  # mean 21.0 > 20
    assert pd.isna(table.loc["resnet110(shortcut=scaled)", "outcome"])  # 12.3: not a fail
    page = (identity / "shortcut_designs.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| `resnet110(shortcut=exclusive_gate)`"))
    assert "exclusive gating, b_g 0" in row and "1-g(x) / g(x)" in row
    assert "| fail: 26.00 ± 1.41 (n=2) | fail |" in row  # ours, then the paper's "fail" for b_g 0 to -5
    plain = next(line for line in page.splitlines() if line.startswith("| `plain110`"))
    assert "fail: 2 diverged" in plain and "constant scaling" in plain and "0 / 1" in plain
    # the row the suite does not train is named, with the paper's outcome
    assert "Rows of the paper's table this experiment does not train: constant scaling 0.5 / 1 (fail)." in page
    # statistics against option A's ResNet-110 (the gates and scalings act on it)
    stats = pd.read_csv(identity / "shortcut_designs_statistics.csv").set_index("spec")
    assert set(stats.baseline) == {"resnet110"} and len(stats) == 9
    assert stats.loc["resnet110(shortcut=scaled)", "gain"] == pytest.approx(-5.7)


@pytest.mark.slow
def test_units_pages_have_the_papers_column_for_every_unit_and_depth(identity):
    units = pd.read_csv(identity / "units_units.csv").set_index("spec")
    assert units.loc["resnet110(unit=bn_after_add)", "paper_error"] == 8.17
    assert units.loc["resnet164(unit=relu_preact)", "paper_error"] == 5.91
    assert units.loc["resnet164(unit=preact)", "paper_error"] == 5.46
    page = (identity / "units.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| `resnet164(unit=preact)`"))
    assert "| 164 | bottleneck | preact: BN-ReLU-conv-BN-ReLU-conv, add (Fig. 4e" in row
    assert "5.45 ± 0.07 (n=2)" in row and "5.46 (Table 2)" in row
    assert "nan" not in page  # a basic block's stride placement is absent, not pandas' NaN
    stats = pd.read_csv(identity / "units_statistics.csv").set_index("spec")
    assert stats.loc["resnet164(unit=preact)", "baseline"] == "resnet164"  # each unit against its depth's original
    assert stats.loc["resnet110(unit=preact)", "baseline"] == "resnet110"
    # Table 3: the 1001-layer pair is expensive, so not planned, and ResNet-1001's row is absent, not empty
    preact = pd.read_csv(identity / "preact_units.csv")
    assert list(preact.spec) == ["resnet110", "resnet110(unit=preact)", "resnet164", "resnet164(unit=preact)"]
    assert ("Not planned: `resnet1001`, `resnet1001(unit=preact)` (marked expensive: `--expensive` trains and reports "
            "them).") in (identity / "preact.md").read_text()


@pytest.mark.slow
def test_the_identity_pages_figures_show_the_papers_points(identity):
    for name in ("shortcut_designs_errors", "shortcut_designs_curves", "units_errors", "units_curves",
                 "preact_errors"):
        with Image.open(identity / f"{name}.png") as image:
            assert image.size[0] > 600 and image.size[1] > 400, name
    page = (identity / "units.md").read_text()
    assert "beside the paper's figure (hollow square" in page


def test_the_identity_recipe_warms_up_every_net_and_is_not_the_papers():
    from bench import recipe as recipes

    identity, paper = recipes.get("identity"), recipes.get("paper")
    plan = identity.resolve(50_000)
    assert plan.schedule.deep_net_warmup.applies_to(20) and not paper.resolve(50_000).schedule.deep_net_warmup.applies_to(20)
    assert (plan.schedule.deep_net_warmup.lr, plan.schedule.deep_net_warmup.iterations) == (0.01, 400)
    assert plan.schedule.deep_net_warmup.until_error == 0.0  # a fixed 400 iterations, no stop at 80% error
    differing = {key for key, value in identity.to_dict().items() if paper.to_dict()[key] != value}
    assert differing == {"name", "warmup_min_depth", "warmup_until_error"}
    planned = suites.expand(suites.load("identity"))
    assert {run.run.recipe.name for run in planned} == {"identity"}
    paper_run = suites.expand(suites.load("cifar10"), only=["depth"])
    ids = {run.spec: run.run_id for run in planned}
    assert next(run.run_id for run in paper_run if run.spec == "resnet110") != ids["resnet110"]


WIDE = {"resnet164(unit=preact)": (5.5, 5.7), "resnet110": (6.5, 6.9), "wrn16_8": (4.3, 4.5), "wrn28_10": (4.0, 4.1)}


@pytest.mark.slow
def test_the_wide_page_shows_the_cost_of_each_gain(tmp_path):
    out = build(tmp_path, "cifar10", WIDE, "paper", {"name": "cifar10", "num_classes": 10}, expensive=True)
    table = pd.read_csv(out / "wide.csv").set_index("spec")
    assert table.loc["wrn28_10", "params"] == 36_479_194 and table.loc["wrn16_8", "params"] == 10_961_370
    assert table.loc["wrn28_10", "macs"] == measure("wrn28_10").macs
    assert table.loc["wrn28_10", "paper_error"] == 4.00 and table.loc["resnet164(unit=preact)", "paper_error"] == 5.46
    page = (out / "wide.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| `wrn28_10`"))
    assert "WRN-28-10" in row and "36,479,194" in row and "(Zagoruyko & Komodakis 2016)" in row
    cheapest = min(measure(spec).macs for spec in WIDE)
    assert f"{measure('wrn28_10').macs / cheapest:.1f}x" in row
    assert "pre-activation ResNet-164 (bottleneck)" in page and "WRN-16-8" in page and "nan" not in page
    stats = pd.read_csv(out / "wide_statistics.csv").set_index("spec")
    assert set(stats.baseline) == {"resnet164(unit=preact)"}


CARDINALITY = {"resnet50b": (30.0, 30.4), "resnet50b(groups=2,base_width=40)": (29.5, 29.9),
               "resnet50b(groups=4,base_width=24)": (29.0, 29.6), "resnet50b(groups=8,base_width=14)": (28.8, 29.0),
               "resnext50_32x4d": (28.5, 28.7)}


@pytest.mark.slow
def test_the_cardinality_page_puts_resnext_table3_beside_ours_at_equal_cost(tmp_path):
    out = build(tmp_path, "imagenette", CARDINALITY, "bot", {"name": "imagenette", "num_classes": 10,
                                                                  "image_size": 128})
    table = pd.read_csv(out / "cardinality.csv").set_index("spec")
    assert list(table.paper_top1_error) == [23.9, 23.0, 22.6, 22.3, 22.2]
    assert table.loc["resnext50_32x4d", "macs_224"] == measure("resnext50_32x4d", image_size=224).macs
    ratios = table.macs / table.loc["resnet50b", "macs"]
    assert ratios.between(0.94, 1.06).all()  # ResNeXt Table 3's settings: about one cost
    page = (out / "cardinality.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| `resnet50b(groups=8,base_width=14)`"))
    assert "| 8 x 14d |" in row and "| 22.3 |" in row
    assert "MACs (128x128)" in page and "ours differ from 1 x 64d by" in page
    stats = pd.read_csv(out / "cardinality_statistics.csv").set_index("spec")
    assert set(stats.baseline) == {"resnet50b"} and len(stats) == 4


def test_long_specs_are_ticked_one_option_a_line():
    from bench.report.figures import tick_label

    assert tick_label("resnet110(shortcut=exclusive_gate,gate_bias=-6)") == "resnet110\nshortcut=exclusive_gate\ngate_bias=-6"
    assert tick_label("wrn28_10") == "wrn28_10"


@pytest.mark.parametrize("name", ["cifar10", "identity", "imagenette", "imagenet"])
def test_the_specs_that_share_a_figure_have_colours_a_reader_tells_apart(name):
    import itertools
    import math

    from bench.report.figures import spec_colors

    groups = [experiment.runs + experiment.expensive for experiment in suites.load(name).experiments.values()]
    colors = spec_colors([spec for group in groups for spec in group], groups)
    for group in groups:
        for first, second in itertools.combinations(dict.fromkeys(group), 2):
            assert math.dist(colors[first], colors[second]) > 0.25, (first, second)


def test_table1s_figures_are_ResNet_110s_alone(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\ndataset = "cifar10"\n[experiments.designs]\ntitle = "Designs on ResNet-56"\n'
                    'report = "shortcut_designs"\nruns = ["resnet56", "resnet56(shortcut=scaled)"]\n')
    out = build(tmp_path, str(path), {"resnet56": (7.0, 7.2), "resnet56(shortcut=scaled)": (9.0, 9.4)}, "paper",
                {"name": "cifar10", "num_classes": 10})
    table = pd.read_csv(out / "table1_shortcut_designs.csv").set_index("spec")
    assert table.paper_error.isna().all() and table.paper_outcome.isna().all()
    row = next(line for line in (out / "designs.md").read_text().splitlines()
               if line.startswith("| `resnet56(shortcut=scaled)`"))
    assert "| constant scaling | 0.5 / 0.5 |" in row and row.rstrip().endswith("| 9.20 ± 0.28 (n=2) |  |")
