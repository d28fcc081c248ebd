"""Reports from synthetic run records: the cells of the tables, missing and diverged runs, and the figures."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench import suite as suites
from bench.commands.report import report_suite
from bench.records import RunRecord

SUITE = """
name = "synthetic"
dataset = "cifar10"

[experiments.depth]
title = "Depth vs error"
report = "depth"
runs = ["resnet20", "plain20", "resnet32", "plain32"]

[experiments.shortcuts]
title = "Shortcuts"
report = "shortcuts"
runs = ["resnet20", "resnet20(shortcut=B)", "plain20"]

[experiments.tweaks]
title = "Tweaks"
report = "tweaks"
runs = ["resnet50", "resnet50d"]

[experiments.stems]
title = "Stems"
report = "stems"
runs = ["resnet18", "resnet18c"]
"""

# (spec, seed) -> final test error, or a status for runs that did not finish; absent pairs are missing.
OUTCOMES = {
    ("resnet20", 0): 10.0, ("resnet20", 1): 12.0,
    ("plain20", 0): 15.0, ("plain20", 1): "diverged",
    ("plain32", 0): 20.0, ("resnet32", 1): "running",
    ("resnet50", 0): 30.0, ("resnet50d", 0): 28.0, ("resnet50d", 1): 29.0,
    ("resnet20(shortcut=B)", 0): 9.0, ("resnet20(shortcut=B)", 1): 9.5,
}


def fake_records(results, planned):
    for run in planned:
        outcome = OUTCOMES.get((run.spec, run.seed))
        if outcome is None:
            continue
        record = RunRecord(results, run.run_id)
        record.write_config({"spec": run.spec, "recipe": {"name": "paper", "scale": 0.05, "iterations": 3200},
                             "execution": {"device_name": "Test CPU", "precision": "bf16"}})
        for iteration in (1600, 3200):
            record.append_metrics({"iteration": iteration, "train/error": 30.0 - iteration / 400,
                                   "test/error": 40.0 - iteration / 400})
        if outcome in ("diverged", "running"):
            record.write_summary({"status": outcome, "updated_at": "2026-11-20T10:00:00+00:00"})
        else:
            record.write_summary({"status": "finished", "test_error": outcome, "train_img_s": 1000.0 + outcome,
                                  "updated_at": "2026-11-21T10:00:00+00:00"})


@pytest.fixture
def built(tmp_path):
    path = tmp_path / "synthetic.toml"
    path.write_text(SUITE)
    results = tmp_path / "results"
    fake_records(results, suites.expand(suites.load(path), "paper", 0.05, seeds=2))
    out_dir = report_suite(str(path), results_dir=results, recipe="paper", scale=0.05, seeds=2, wandb_mode="disabled")
    return out_dir


def test_table6_analog_cells(built):
    table = pd.read_csv(built / "table6_depth.csv").set_index("depth")
    assert table.loc[20, "resnet_error_mean"] == 11.0
    assert table.loc[20, "resnet_error_std"] == 1.41  # rounded as the page shows it (2 ** 0.5)
    assert (built / "table6_depth.csv").read_text().splitlines()[1].startswith("20,269722,270000.0,15.0,,1,11.0,1.41,2,")
    assert table.loc[20, "plain_error_mean"] == 15.0 and table.loc[20, "plain_seeds"] == 1
    assert table.loc[20, "residual_gain"] == 4.0
    assert table.loc[20, "params_ours"] == 269_722 and table.loc[20, "params_paper"] == 270_000
    assert table.loc[20, "paper_error"] == 8.75 and table.loc[32, "akamaster_error"] == 7.37
    assert pd.isna(table.loc[32, "resnet_error_mean"]) and table.loc[32, "resnet_seeds"] == 0
    assert pd.isna(table.loc[32, "residual_gain"])

    page = (built / "depth.md").read_text()
    assert "| 20 | 269,722 | 0.27M | 15.00 (1 diverged) | 11.00 ± 1.41 (n=2) | 8.75 | 8.27 | 7.40 | 4.00 |" in page
    assert "| 32 | 464,154 | 0.46M | 20.00 (1 missing) | 1 unfinished, 1 missing | 7.51 | 7.37 | 6.47 |  |" in page
    assert "| 110 |" not in page  # only the depths the experiment plans
    assert "Missing: `resnet32` seed 0, `plain32` seed 1." in page
    assert "Diverged: `plain20` seed 1." in page and "Running: `resnet32` seed 1." in page
    assert "recipe `paper` x0.05 (3,200 iterations), seeds 0..1. Device: Test CPU (bf16)" in page
    assert "Finished: 4 of 8." in page


@pytest.mark.slow
def test_shortcut_table_puts_paper_imagenet_figures_in_their_own_column(built):
    table = pd.read_csv(built / "shortcuts.csv")
    assert list(table.spec) == ["resnet20", "resnet20(shortcut=B)", "plain20"]
    assert list(table.shortcut) == ["A", "B", "none"]
    assert table.params[0] == table.params[2] < table.params[1]
    page = (built / "shortcuts.md").read_text()
    assert "| `resnet20(shortcut=B)` | option B | 272,474 |" in page  # + 16->32 and 32->64 projections
    assert "9.25 ± 0.35 (n=2) | 24.52 |" in page  # ours on CIFAR-10, then the paper's ImageNet ResNet-34 B
    plain_row = next(line for line in page.splitlines() if line.startswith("| `plain20` |"))
    assert plain_row.startswith("| `plain20` | none (plain) | 269,722 |") and plain_row.endswith("| 28.54 |")


@pytest.mark.slow
def test_tweak_and_stem_tables(built):
    tweaks = (built / "tweaks.md").read_text()
    assert "| `resnet50` | original | 23,528,522 | 79.1M | 30.00 (1 missing) | 3.8 | 76.21 |" in tweaks
    assert "| `resnet50d` | ResNet-D | 23,547,754 | 88.8M | 28.50 ± 0.71 (n=2) | 4.3 | 77.16 |" in tweaks
    # throughput in its own cost table, beside the MACs, not among the errors
    assert "| `resnet50` | 79.1M | 1030 | Test CPU |" in tweaks and "| `resnet50d` | 88.8M | 1028 | Test CPU |" in tweaks
    assert "downsample 4x" in tweaks
    stems = (built / "stems.md").read_text()
    assert "| `resnet18` | basic | 7x7 conv | 11,181,642 | 37.1M | 2 missing |" in stems
    assert "| `resnet18c` | basic | 3x 3x3 convs (deep) | 11,200,874 | 42.0M | 2 missing |" in stems


@pytest.mark.slow
def test_figures_render_and_index_lists_pages(built):
    for name in ("figure6_curves.png", "depth_vs_error.png"):
        with Image.open(built / name) as image:
            assert image.size[0] > 500 and image.size[1] > 300
            pixels = np.asarray(image.convert("RGB")).astype(int)
            coloured = (pixels.max(axis=2) - pixels.min(axis=2) > 60).sum()
            assert coloured > 2000  # data lines and markers are drawn in colour, not just grey axes
    index = (built / "index.md").read_text()
    assert "| Depth vs error | 4 of 8 | [depth.md](depth.md) |" in index
    assert "| Stems | 0 of 4 | [stems.md](stems.md) |" in index
    assert "[shortcuts.md](shortcuts.md)" in index


@pytest.mark.slow
def test_report_without_matching_records_says_what_exists(tmp_path, built):
    results = built.parents[2]
    out_dir = report_suite(str(tmp_path / "synthetic.toml"), results_dir=results, recipe="smoke", scale=1.0,
                           wandb_mode="disabled")
    index = (out_dir / "index.md").read_text()
    assert "No records for recipe `smoke` x1. Records on disk: `--recipe paper --scale 0.05` (11 runs)." in index
    assert "| Depth vs error | 0 of 4 |" in index  # one seed asked for here


@pytest.mark.slow
def test_bottleneck_cost_page_against_table_1(tmp_path):
    path = tmp_path / "cost.toml"
    path.write_text('name = "cost"\ndataset = "cifar10"\n[experiments.bottleneck]\ntitle = "Cost"\n'
                    'report = "bottleneck"\nruns = []\n')
    out_dir = report_suite(str(path), results_dir=tmp_path / "results", wandb_mode="disabled")
    table = pd.read_csv(out_dir / "table1_cost.csv").set_index("depth")
    ratio = table.macs_original / (table.paper_gflops * 1e9)
    assert ratio.between(0.97, 1.03).all()
    assert list((table.macs_resnet_b / 1e9).round(2)) == [1.82, 3.67, 4.11, 7.83, 11.56]  # torchvision's counts
    blocks = pd.read_csv(out_dir / "fig5_blocks.csv")
    assert list(blocks.conv_weights) == [73_728, 69_632, 69_632 + 65_536]
    assert "trains nothing" in (out_dir / "bottleneck.md").read_text()


def test_variant_pages_show_an_axis_that_varies_beyond_the_pages_own(tmp_path):
    """A custom experiment on a shortcuts page that also varies SE gets an SE column: the page names what differs."""
    path = tmp_path / "se.toml"
    path.write_text('name = "se"\ndataset = "cifar10"\n[experiments.se]\ntitle = "SE"\nreport = "shortcuts"\n'
                    'runs = ["resnet20", "resnet20(se=true)", "resnet20(shortcut=B,se=true)"]\n')
    out_dir = report_suite(str(path), results_dir=tmp_path / "results", wandb_mode="disabled")
    page = (out_dir / "se.md").read_text()
    assert "| spec | shortcut | SE | params |" in page
    # SE adds, per block of width C with C // 16 = r: C*r + r + r*C + C; 3 blocks each of 16, 32, 64: 2,373
    assert "| `resnet20(se=true)` | option A | true | 272,095 |" in page
    table = pd.read_csv(out_dir / "shortcuts.csv")
    assert list(table.se) == [False, True, True] and list(table.blocks_per_stage) == ["3-3-3"] * 3


def test_pages_list_the_code_their_runs_came_from_and_warn_when_it_differs(tmp_path):
    path = tmp_path / "code.toml"
    path.write_text('name = "code"\ndataset = "cifar10"\n[experiments.shortcuts]\ntitle = "Shortcuts"\n'
                    'report = "shortcuts"\nruns = ["resnet20", "resnet20(shortcut=B)"]\n'
                    '[experiments.stems]\ntitle = "Stems"\nreport = "stems"\nruns = ["resnet18"]\n')
    results = tmp_path / "results"
    sources = {"resnet20": {"commit": "a" * 40, "dirty": False},
               "resnet20(shortcut=B)": {"commit": "a" * 40, "dirty": True, "diff": "source.diff",
                                        "diff_sha256": "5e" * 32},
               "resnet18": {"commit": "b" * 40, "dirty": False}}
    for run in suites.expand(suites.load(path), "paper", 0.05, 1):
        record = RunRecord(results, run.run_id)
        record.write_config({"spec": run.spec, "recipe": {"name": "paper", "scale": 0.05, "iterations": 3200},
                             "source": sources[run.spec]})
        record.write_summary({"status": "finished", "test_error": 10.0, "updated_at": "2026-11-21T10:00:00+00:00"})
    out_dir = report_suite(str(path), results_dir=results, recipe="paper", scale=0.05, wandb_mode="disabled")
    shortcuts = (out_dir / "shortcuts.md").read_text()
    assert ("**Warning: these runs come from 2 versions of the code:** `aaaaaaaaaa` (1 run), `aaaaaaaaaa+diff 5e5e5e5e` "
            "(1 run). A difference between variants may come from the code") in shortcuts
    assert "stored as `source.diff` in each run's folder" in shortcuts
    stems = (out_dir / "stems.md").read_text()
    assert "Code: `bbbbbbbbbb` (1 run)." in stems and "Warning" not in stems
    index = (out_dir / "index.md").read_text()
    assert "**Warning: these runs come from 3 versions of the code:**" in index
