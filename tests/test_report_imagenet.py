"""Reports of the Imagenette suite from synthetic records: Table 2/3 beside ours, costs at the trained
resolution, pages that name the dataset, and a partial suite."""

import pytest
import pandas as pd

from bench import suite as suites
from bench.commands.report import report_suite
from bench.cost import measure
from bench.records import RunRecord

# Imagenette under `bot` trains at 128 px; the errors are made up, spaced so that every cell is recognisable.
ERRORS = {"plain18": 31.0, "plain34": 33.0, "resnet18(shortcut=A)": 30.0, "resnet34(shortcut=A)": 28.0,
          "resnet50": 26.0, "resnet101": 25.0, "resnet34": 27.5, "resnet34(shortcut=C)": 27.0,
          "resnet50b": 25.5, "resnet50c": 25.2, "resnet50d": 24.9, "resnet18": 29.5, "resnet18c": 29.0,
          "resnet34c": 27.2, "resnet50(stem=deep)": 25.8}


def fake_records(results, planned, specs):
    for run in planned:
        if run.spec not in specs:
            continue
        record = RunRecord(results, run.run_id)
        record.write_config({"spec": run.spec, "recipe": {"name": "bot", "scale": 1.0, "iterations": 720},
                             "dataset": {"name": "imagenette", "num_classes": 10, "image_size": 128},
                             "execution": {"device_name": "Test GPU", "precision": "bf16"}})
        for iteration in (360, 720):
            record.append_metrics({"iteration": iteration, "train/error": 50.0 - iteration / 40,
                                   "test/error": ERRORS[run.spec] + 720 / iteration - 1})
        record.write_summary({"status": "finished", "test_error": ERRORS[run.spec], "train_img_s": 900.0,
                              "updated_at": "2026-11-23T10:00:00+00:00"})


def build(tmp_path, specs):
    planned = suites.expand(suites.load("imagenette"))
    fake_records(tmp_path, planned, specs)
    return report_suite("imagenette", results_dir=tmp_path, wandb_mode="disabled")


@pytest.mark.slow
def test_imagenette_report_puts_tables_2_and_3_beside_ours_at_128_px(tmp_path):
    out = build(tmp_path, ERRORS)
    assert out == tmp_path / "reports" / "imagenette" / "bot-x1"  # the suite's own recipe
    table = pd.read_csv(out / "imagenet_depth.csv").set_index("depth")
    assert list(table.index) == [18, 34, 50, 101]
    assert table.loc[18, "plain_error_mean"] == 31.0 and table.loc[18, "resnet_error_mean"] == 30.0
    assert table.loc[34, "residual_gain"] == 5.0  # plain-34 33.0 against ResNet-34 (option A) 28.0
    assert (table.loc[18, "paper_plain_top1_error"], table.loc[18, "paper_resnet_top1_error"]) == (27.94, 27.88)
    assert (table.loc[34, "paper_plain_top1_error"], table.loc[34, "paper_resnet_top1_error"]) == (28.54, 25.03)
    assert table.loc[50, "paper_resnet_top1_error"] == 22.85 and table.loc[101, "paper_resnet_top1_error"] == 21.75
    assert table.loc[18, "resnet_spec"] == "resnet18(shortcut=A)"
    assert table.loc[18, "macs"] == measure("resnet18(shortcut=A)", image_size=128, num_classes=10).macs
    assert table.loc[50, "params"] == measure("resnet50", image_size=128, num_classes=10).params

    depth = (out / "depth.md").read_text()
    assert "Table 2 / Table 3 analog: Imagenette at 128x128" in depth and "MACs (128x128)" in depth
    assert "a 10-class problem" in depth and "10-crop" in depth
    for page in ("depth", "shortcuts", "tweaks", "stems"):
        text = (out / f"{page}.md").read_text()
        assert "32x32 images" not in text and "at 32x32" not in text and "CIFAR" not in text, page
        assert "Imagenette at 128x128" in text, page
    tweaks = (out / "tweaks.md").read_text()
    assert "the first stage works on 32x32 maps and the last on 4x4" in tweaks and "| 76.21 |" in tweaks
    shortcuts = pd.read_csv(out / "shortcuts.csv").set_index("spec")
    assert shortcuts.loc["resnet34(shortcut=C)", "macs"] == measure("resnet34(shortcut=C)", 128, 10).macs
    assert (out / "imagenet_depth_curves.png").stat().st_size > 10_000
    assert (out / "imagenet_depth_vs_error.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_partial_imagenette_suite_names_what_is_missing(tmp_path):
    residual_only = {spec: error for spec, error in ERRORS.items() if not spec.startswith("plain")}
    out = build(tmp_path, residual_only)
    depth = (out / "depth.md").read_text()
    assert "Missing: `plain18` seed 0, `plain34` seed 0." in depth
    table = pd.read_csv(out / "imagenet_depth.csv").set_index("depth")
    assert pd.isna(table.loc[18, "plain_error_mean"]) and table.loc[18, "resnet_error_mean"] == 30.0
    assert (out / "imagenet_depth_curves.png").exists()
