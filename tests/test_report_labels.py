"""Reports as a reader meets them: a short budget says so, every figure says how it was produced, partial suites
draw no empty panels, every comparison experiment has figures, and throughput stands apart from the errors."""

import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
from fvcore.nn import FlopCountAnalysis

import variants
from bench import report
from bench import suite as suites
from bench.commands.report import report_suite
from bench.report import figures

from test_report import SUITE, fake_records

COST_PAGE = Path(__file__).parents[1] / "docs" / "variants.md"  # README's "Cost of a model" moved there


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "synthetic.toml"
    path.write_text(SUITE)
    return path


@pytest.fixture
def labels(monkeypatch):
    """The footer of every figure drawn, by file name (figures._footer is the one place that writes it)."""
    seen, saved, footer = [], [], figures._footer

    def recording_footer(figure, label):
        seen.append(label)
        footer(figure, label)

    def recording_save(self, path, *args, **kwargs):
        saved.append(Path(path).name)
        return original_save(self, path, *args, **kwargs)

    from matplotlib.figure import Figure

    original_save = Figure.savefig
    monkeypatch.setattr(figures, "_footer", recording_footer)
    monkeypatch.setattr(Figure, "savefig", recording_save)
    return seen, saved


def build(suite_file, tmp_path, scale=0.05, recipe="paper"):
    results = tmp_path / "results"
    fake_records(results, suites.expand(suites.load(suite_file), "paper", 0.05, seeds=2))
    return report_suite(str(suite_file), results_dir=results, recipe=recipe, scale=scale, seeds=2,
                        wandb_mode="disabled")


@pytest.mark.slow
def test_a_short_budget_report_opens_with_a_banner_and_every_figure_names_its_runs(suite_file, tmp_path, labels):
    out_dir = build(suite_file, tmp_path)
    seen, saved = labels
    banner = "> **Short budget: recipe `paper` at --scale 0.05 trains 0.05x the schedule of the published figures."
    for page in ("index", "depth", "shortcuts", "tweaks", "stems"):
        assert (out_dir / f"{page}.md").read_text().splitlines()[2].startswith(banner), page
    # every PNG written got a footer, and the footer names recipe, scale, seeds and device
    assert sorted(saved) == sorted(path.name for path in out_dir.glob("*.png"))
    assert len(seen) == len(saved) == 6  # depth 2, shortcuts 2, tweaks 2; stems has no finished run
    for label in seen:
        assert label.startswith("recipe paper x0.05 (short budget: not comparable with published figures) · "
                                "seeds 0..1 · "), label
    assert "recipe paper x0.05 (short budget: not comparable with published figures) · seeds 0..1 · Test CPU (bf16)" in seen
    # a full budget has no banner (nothing matches these records at scale 1: every run is missing)
    full = report_suite(str(suite_file), results_dir=tmp_path / "results", recipe="paper", scale=1.0, seeds=2,
                        wandb_mode="disabled")
    assert "Short budget" not in (full / "index.md").read_text() + (full / "depth.md").read_text()
    assert report.short_budget("smoke", 1.0) and not report.short_budget("paper", 1.0)


@pytest.mark.slow
def test_every_comparison_experiment_has_curves_and_final_errors_and_a_separate_cost_table(suite_file, tmp_path):
    out_dir = build(suite_file, tmp_path)
    for key in ("shortcuts", "tweaks"):
        page = (out_dir / f"{key}.md").read_text()
        assert f"]({key}_curves.png)" in page and f"]({key}_errors.png)" in page
        assert (out_dir / f"{key}_curves.png").stat().st_size > 10_000
        cost = pd.read_csv(out_dir / f"{key}_cost.csv")
        assert set(cost.columns) == {"spec", "params", "macs", "train_img_s", "devices"}
        assert "train_img_s" not in pd.read_csv(out_dir / f"{key}.csv").columns  # nor in the errors' CSV
        assert "depends on the device and on what else the machine ran" in page
        main = page.split("## Cost")[0]
        assert "img/s" not in main  # the error table itself carries no throughput
    # stems has no finished run: no figure drawn empty, the page says why
    stems = (out_dir / "stems.md").read_text()
    assert ".png" not in stems and "No finished runs yet: the curves appear when one finishes." in stems
    assert not (out_dir / "stems_cost.csv").exists()


def test_comparison_panels_split_by_depth():
    specs = {"resnet32": {"family": "cifar", "depth": 32}, "plain32": {"family": "cifar", "depth": 32},
             "resnet56": {"family": "cifar", "depth": 56}}
    from bench.report.pages import comparison_panels

    assert comparison_panels(["resnet32", "resnet56", "plain32"], specs) == {
        "32 layers (cifar)": ["resnet32", "plain32"], "56 layers (cifar)": ["resnet56"]}


def drawn(monkeypatch, draw):
    """The matplotlib figure `draw` builds, kept open; and every warning raised while drawing it."""
    kept = []
    monkeypatch.setattr(figures.plt, "close", kept.append)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw()
    return kept[0], [str(warning.message) for warning in caught]


def test_figure6_with_only_residual_runs_says_so_instead_of_an_empty_panel(monkeypatch, tmp_path):
    curves = pd.DataFrame([{"spec": spec, "seed": 0, "iteration": iteration, "train/error": 50.0 - iteration / 100,
                            "test/error": 55.0 - iteration / 100}
                           for spec in ("resnet20", "resnet32") for iteration in (100, 200, 300)])
    specs = {"resnet20": {"depth": 20, "plain": False}, "resnet32": {"depth": 32, "plain": False},
             "plain20": {"depth": 20, "plain": True}}
    figure, messages = drawn(monkeypatch, lambda: figures.training_curves(curves, specs, tmp_path / "f6.png",
                                                                          label="recipe paper x1"))
    assert messages == []  # no "No artists with labels found to put in legend"
    plain, residual = figure.axes
    assert [text.get_text() for text in plain.texts] == ["no finished plain nets yet"]
    assert plain.get_legend() is None and list(plain.get_xticks()) == [] and not plain.lines
    assert [text.get_text() for text in residual.get_legend().get_texts()] == ["ResNet-20", "ResNet-32"]
    # the legend sits under the panel, outside the data area
    assert residual.get_legend().get_window_extent().y1 < residual.get_window_extent().y0
    colors = [line.get_color() for line in residual.lines if line.get_label().startswith("ResNet")]
    assert len(set(map(tuple, colors))) == 2
    assert any(text.get_text() == "recipe paper x1" for text in figure.texts)


def test_comparison_curves_name_a_spec_without_runs_in_the_title_not_in_the_plot(monkeypatch, tmp_path):
    curves = pd.DataFrame([{"spec": "resnet50", "seed": 0, "iteration": i, "train/error": 60.0, "test/error": 70.0}
                           for i in (10, 20)])
    figure, messages = drawn(monkeypatch, lambda: figures.comparison_curves(
        curves, {"50 layers": ["resnet50", "resnet50d"]}, tmp_path / "c.png", "CIFAR-10"))
    (axis,) = figure.axes
    assert messages == [] and axis.get_title() == "no finished run yet: resnet50d"
    assert [text.get_text() for text in axis.get_legend().get_texts()] == ["resnet50"]
    assert axis.get_legend().get_window_extent().y1 < axis.get_window_extent().y0


@pytest.mark.slow
def test_the_bottleneck_page_and_the_readme_say_fvcore_counts_the_global_average_pool(tmp_path):
    counted = FlopCountAnalysis(variants.create("resnet18").eval(), torch.zeros(1, 3, 224, 224))
    counted.unsupported_ops_warnings(False)
    assert counted.by_operator()["adaptive_avg_pool2d"] == 512 * 7 * 7  # one per input element
    assert "max_pool2d" not in counted.by_operator()
    suite = tmp_path / "b.toml"
    suite.write_text('name = "b"\ndataset = "cifar10"\n[experiments.bottleneck]\ntitle = "B"\nreport = "bottleneck"\n'
                     'runs = []\n')
    page = (report_suite(str(suite), results_dir=tmp_path, wandb_mode="disabled") / "bottleneck.md").read_text()
    assert "fvcore counts the convs, the fc, batch norm and the global average pool; it skips the residual adds " \
           "and the max-pool" in page
    assert "fvcore counts convs, the fc, BN and the global average pool" in " ".join(COST_PAGE.read_text().split())


@pytest.fixture
def colours_drawn(monkeypatch):
    """Per figure saved (by file name): the colour of each spec's curves and markers (their gid is the spec)."""
    from matplotlib.colors import to_hex
    from matplotlib.figure import Figure

    colours, original_save = {}, Figure.savefig

    def recording_save(self, path, *args, **kwargs):
        seen = colours.setdefault(Path(path).name, {})
        for axis in self.axes:
            for line in axis.get_lines():
                if line.get_gid():
                    seen.setdefault(line.get_gid(), set()).add(to_hex(line.get_color()))
            for collection in axis.collections:
                if collection.get_gid():
                    seen.setdefault(collection.get_gid(), set()).add(to_hex(collection.get_facecolor()[0]))
        return original_save(self, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_save)
    return colours


@pytest.mark.slow
def test_a_spec_has_one_colour_in_every_figure_of_a_report(suite_file, tmp_path, colours_drawn):
    build(suite_file, tmp_path)
    by_spec: dict[str, dict[str, set]] = {}
    for name, specs in colours_drawn.items():
        for spec, colours in specs.items():
            by_spec.setdefault(spec, {})[name] = colours
    # resnet20 is drawn in Figure 6, the shortcut curves and the shortcut errors: one colour in all three
    assert {"figure6_curves.png", "shortcuts_curves.png", "shortcuts_errors.png"} <= set(by_spec["resnet20"])
    for spec, figures_of_spec in by_spec.items():
        assert len(set().union(*figures_of_spec.values())) == 1, (spec, figures_of_spec)
    first = {spec: next(iter(next(iter(seen.values())))) for spec, seen in by_spec.items()}
    assert len(set(first.values())) == len(first)  # and no two specs share one


def test_legends_fill_their_rows_evenly_and_the_papers_points_get_their_own_axis_when_far_apart(tmp_path):
    assert [figures.legend_columns(n) for n in (1, 4, 5, 6, 7, 9)] == [1, 4, 3, 3, 4, 3]
    table = pd.DataFrame({"depth": [20, 32], "plain_error_mean": [60.0, 62.0], "plain_error_std": [1.0, 1.0],
                          "resnet_error_mean": [55.0, 54.0], "resnet_error_std": [1.0, 1.0]})
    kept = {}
    from matplotlib.figure import Figure
    original = Figure.savefig

    def keep(self, path, *args, **kwargs):
        kept[Path(path).name] = [axis.get_ylabel() for axis in self.axes]
        return original(self, path, *args, **kwargs)

    Figure.savefig = keep
    try:
        figures.depth_vs_error(table, tmp_path / "far.png")  # ours at 54-62%, the paper's at 7-9%
        figures.depth_vs_error(table.assign(plain_error_mean=[9.0, 9.5], resnet_error_mean=[8.5, 8.0]),
                               tmp_path / "near.png")
    finally:
        Figure.savefig = original
    assert kept["far.png"] == ["test error (%), ours (left axis)", "test error (%), paper (right axis)"]
    assert kept["near.png"] == ["test error (%)"]
