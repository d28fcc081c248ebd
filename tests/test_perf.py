"""`python -m bench perf` on tiny data in the real layout: it runs A and B, writes the table, CSV and plot,
and every ratio it reports is a finite number. No timing is asserted: these machines are too noisy."""

import math
import re

import pandas as pd
import pytest
import torch

import variants
from bench import data as datasets
from bench import perf as bench_perf
from bench import standard
from bench.cli import main
from bench.recipe import RECIPES

TINY = ["--iters", "2", "--warmup", "1", "--repeats", "1", "--batch-size", "16", "--workers", "1",
        "--scaling-steps", "1", "--scaling-repeats", "2"]
# median (min–max) of the repeats, e.g. 1,104.2 (1,014.0–1,276.3)
SPREAD_CELL = re.compile(r"^[\d,]+\.\d \([\d,]+\.\d–[\d,]+\.\d\)$")


def perf(root, out, *extra):
    return main(["perf", "resnet20", "--data-dir", str(root), "--device", "cpu", *TINY, "--out", str(out), *extra])


def ratio_cells(markdown: str) -> list[str]:
    """The B/A column of the main table: its rows are `| spec | metric | A | B | B/A |`."""
    cells = []
    for line in markdown.splitlines():
        parts = [part.strip() for part in line.strip().strip("|").split("|")]
        if len(parts) == 5 and parts[0] == "resnet20" and parts[4].endswith("x"):
            cells.append(parts[4])
    return cells


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The body rows of the first table after the line starting with `heading`, as lists of cells."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            table.append([part.strip() for part in line.strip().strip("|").split("|")])
        elif table:
            break
    return table[2:]  # past the header and the alignment row


@pytest.mark.slow
def test_perf_writes_table_csv_and_plot_with_finite_ratios(tmp_path, tiny_cifar10, capsys):
    root, _ = tiny_cifar10
    out = tmp_path / "perf"
    assert perf(root, out, "--depths", "resnet20", "plain20", "--batch-sizes", "16", "32") == 0
    assert {p.name for p in out.iterdir()} >= {"perf.md", "perf.csv", "scaling.png"}
    markdown = (out / "perf.md").read_text()
    assert "python -m bench perf resnet20" in markdown and "torch " + torch.__version__ in markdown
    ratios = ratio_cells(markdown)
    assert len(ratios) == 4  # train, data pipeline, inference, peak memory
    assert all(math.isfinite(float(cell.rstrip("x").replace(",", ""))) for cell in ratios)

    frame = pd.read_csv(out / "perf.csv")
    for metric in ("train", "data", "inference", "peak_memory"):
        assert set(frame[frame.metric == metric].pipeline) == {"A", "B"}, metric
    assert set(frame[frame.metric == "step_ms_by_depth"].spec) == {"resnet20", "plain20"}
    assert sorted(set(frame[frame.metric == "step_ms_by_batch"].batch_size)) == [16, 32]
    scaling = frame[frame.metric.str.startswith("step_ms_by_")]
    assert len(scaling) == 2 * (2 + 2)  # --scaling-repeats 2 of each of the 2 depth and 2 batch points
    for point, repeats in scaling.groupby(["spec", "metric", "batch_size"]).repeat:
        assert sorted(repeats) == [1, 2], point
    assert scaling.value.gt(0).all()
    assert frame[frame.unit == "img/s"].value.gt(0).all()
    assert {"wandb_disabled", "wandb_offline", "wandb_offline_log_share"} <= set(frame.metric)
    log_share = frame[frame.metric == "wandb_offline_log_share"].value
    assert log_share.between(0, 100).all()
    assert "| 20 |" in markdown and "| 32 |" in markdown  # depth and batch tables
    assert "2 repeats of 1 timed step" in markdown and "min–max" in markdown
    [depth_row] = table_rows(markdown, "## B's step time against depth")
    assert depth_row[0] == "20" and all(SPREAD_CELL.match(cell) for cell in depth_row[1:3]), depth_row
    # the verdict the table gives is the one the recorded repeats call for (perf.csv)
    repeats = frame[frame.metric == "step_ms_by_depth"].groupby("spec").value.apply(list)
    assert depth_row[3] == bench_perf.noise_verdict(repeats["resnet20"], repeats["plain20"]), depth_row
    batch_rows = table_rows(markdown, "## B's step time against batch size")
    assert [row[0] for row in batch_rows] == ["16", "32"]
    assert all(SPREAD_CELL.match(row[1]) and float(row[2].replace(",", "")) > 0 for row in batch_rows), batch_rows
    assert "written:" in capsys.readouterr().out


@pytest.mark.slow
def test_perf_without_wandb_or_scaling_has_no_such_sections(tmp_path, tiny_cifar10):
    root, _ = tiny_cifar10
    out = tmp_path / "perf"
    assert perf(root, out, "--no-wandb", "--depths", "--batch-sizes") == 0
    markdown = (out / "perf.md").read_text()
    assert len(ratio_cells(markdown)) == 4
    assert "Cost of W&B" not in markdown and "step time against" not in markdown
    assert not pd.read_csv(out / "perf.csv").metric.str.startswith(("wandb", "step_ms")).any()


def test_perf_array_sets_each_sizes_runs_alone_beside_its_array(tmp_path, tiny_cifar10, capsys):
    """`bench perf --array 1,2`: per spec and K, the K runs alone and the array of K fused and in turn, with
    their ratios; the CSV holds every repeat's img/s, peak memory and GPU utilisation (NaN on the CPU)."""
    root, _ = tiny_cifar10
    out = tmp_path / "perf"
    assert main(["perf", "cifar(depth=8)", "--array", "1,2", "--data-dir", str(root), "--device", "cpu", "--iters", "2",
                 "--warmup", "1", "--repeats", "1", "--batch-size", "16", "--out", str(out)]) == 0
    markdown = (out / "array.md").read_text()
    assert markdown.startswith("# Run arrays: K runs alone against one array of K, fused and in turn, K = 1, 2 (")
    rows = [line for line in markdown.splitlines() if line.startswith("| cifar(depth=8) |")]
    assert [row.split(" | ")[1] for row in rows] == ["1", "2"]
    for row in rows:
        alone, fused, fused_ratio, in_turn, in_turn_ratio = (cell.replace(",", "") for cell in row.split(" | ")[2:7])
        assert float(fused_ratio.rstrip("x")) == pytest.approx(float(fused) / float(alone), abs=0.01)
        assert float(in_turn_ratio.rstrip("x")) == pytest.approx(float(in_turn) / float(alone), abs=0.01)
    frame = pd.read_csv(out / "array.csv")
    assert set(frame.pipeline) == {"1 alone", "fused array of 1", "in-turn array of 1", "2 alone", "fused array of 2",
                                   "in-turn array of 2"}
    assert set(frame.metric) == {"train_img_s", "peak_memory_mb", "gpu_util"}
    assert frame[frame.metric == "gpu_util"].value.isna().all()  # no GPU here
    assert "GPU util" not in markdown


@pytest.mark.parametrize("args, message", [
    (["perf", "resnet21"], "resnet21"),
    (["perf", "resnet20", "--iters", "0"], "--iters 0 is not allowed: it must be at least 1"),
    (["perf", "resnet20", "--batch-sizes", "0"], "every batch size must be at least 1"),
    (["perf", "resnet20", "--scaling-steps", "0"], "--scaling-steps 0 is not allowed: it must be at least 1"),
    (["perf", "resnet20", "--scaling-repeats", "0"], "--scaling-repeats 0 is not allowed: it must be at least 1"),
    (["perf", "resnet20", "--depths", "resnet50"], "--depths resnet50: the depth series takes CIFAR-family specs"),
    (["perf", "resnet20", "--array", "2,0"], "--array 2,0 is not allowed: give array sizes of 1 or more, e.g. 3 or 1,2,4,8"),
])
def test_bad_perf_input_is_one_line_error(tmp_path, tiny_cifar10, capsys, args, message):
    root, _ = tiny_cifar10
    assert main([*args, "--data-dir", str(root), "--out", str(tmp_path / "perf")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "perf").exists()


def test_depth_comparison_calls_overlapping_ranges_noise():
    """Plain against residual per depth: overlapping min–max ranges are noise; separated ones give the ratio
    of medians."""
    def rows(spec, values):
        return [{"spec": spec, "metric": "step_ms_by_depth", "pipeline": "B", "repeat": repeat, "value": value,
                 "unit": "ms", "batch_size": 128} for repeat, value in enumerate(values, 1)]

    frame = pd.DataFrame(rows("resnet20", [100, 110, 104]) + rows("plain20", [108, 125, 112])  # overlap
                         + rows("resnet56", [100, 101, 102]) + rows("plain56", [112, 113, 114])  # 113/101: 12% slower
                         + rows("resnet110", [200, 205, 210]) + rows("plain110", [186, 190, 199])  # 190/205: 7% faster
                         + rows("resnet32", [50, 51]))  # no plain net at this depth
    assert bench_perf.depth_verdicts(frame) == {20: "within noise", 32: "-", 56: "plain 12% slower",
                                                110: "plain 7% faster"}
    assert bench_perf.noise_verdict([10.0, 12.0], [12.0, 14.0]) == "within noise"  # touching ranges overlap
    assert bench_perf.noise_verdict([10.0], [11.0]) == "plain 10% slower (1 repeat: spread unknown)"
    assert bench_perf._spread_cell([1014.0, 1276.3, 1104.2]) == "1,104.2 (1,014.0–1,276.3)"


def test_standard_recipe_sees_the_same_images_as_the_suite(tiny_cifar10):
    """A's PIL pipeline, without augmentation, yields the suite's pixels scaled to [0, 1] and normalised
    per channel: the two paths train on the same data, only the machinery differs."""
    root, _ = tiny_cifar10
    data = datasets.load("cifar10", root, download=False)
    batches = standard.loader_for(data, False, 25, 0, torch.device("cpu"))
    images, labels = next(iter(batches))
    normalizer = datasets.Normalizer(data.train.images, "channel")
    expected = normalizer(data.test.images[:25], torch.contiguous_format)
    assert torch.equal(labels, data.test.labels[:25])
    torch.testing.assert_close(images, expected, atol=1e-5, rtol=1e-5)


def test_standard_path_trains_and_evaluates(tiny_cifar10):
    root, _ = tiny_cifar10
    data = datasets.load("cifar10", root, download=False)
    path = standard.StandardPath(variants.create("cifar(depth=8)", num_classes=10),
                                 RECIPES["smoke"].resolve(len(data.train)), torch.device("cpu"))
    before = [p.detach().clone() for p in path.model.parameters()]
    for images, labels in standard.loader_for(data, True, 50, 0, torch.device("cpu")):
        loss, error = path.step(images, labels, 0.1)
        assert math.isfinite(loss) and 0 <= error <= 100
    assert any(not torch.equal(a, b) for a, b in zip(before, path.model.parameters()))
    loss, error = path.evaluate(standard.loader_for(data, False, 50, 0, torch.device("cpu")))
    assert math.isfinite(loss) and 0 <= error <= 100
