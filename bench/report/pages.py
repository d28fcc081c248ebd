"""One report page per experiment: the paper's table or figure rebuilt from our runs, beside the published one.

Each builder takes the experiment's runs (aggregated per spec) and the `ReportContext` (which dataset, at
what resolution) and returns a `Page`: tables (kept as DataFrames for CSV and W&B, rendered to Markdown for
people) and figures (PNG, drawn with seaborn).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import torch
from torch import nn

import variants
from variants.layers import GATED_SHORTCUTS, UNITS

from ..cost import count_macs, measure
from . import figures, stats
from .runs import AXES, error_cell, reference


@dataclass(frozen=True)
class ReportContext:
    """What the pages say about where the runs trained: the dataset and the resolution."""

    dataset: str = "CIFAR-10"  # its title
    image_size: int = 32
    one_size: bool = True  # the dataset's images come at one size (CIFAR): pages name the dataset alone
    num_classes: int = 10
    label: str = ""  # how the runs were produced (recipe, scale, seeds, device), printed under every figure
    colors: dict | None = None  # spec -> colour, one for every figure of the report (figures.spec_colors)

    @property
    def where(self) -> str:
        """'CIFAR-10', or 'Imagenette at 128x128' where the resolution is not the dataset's only one."""
        return self.dataset if self.one_size else f"{self.dataset} at {self.pixels}"

    @property
    def pixels(self) -> str:
        return f"{self.image_size}x{self.image_size}"


@dataclass
class Table:
    name: str  # file stem of the CSV
    title: str
    data: pd.DataFrame  # numbers, for CSV and W&B
    shown: pd.DataFrame  # formatted cells, for Markdown


@dataclass
class Page:
    key: str
    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)  # (caption, png path)


def by_spec(summary: pd.DataFrame) -> dict[str, dict]:
    """The aggregated rows (runs.aggregate) by spec."""
    return {row["spec"]: row for row in summary.to_dict("records")}


def _fmt_int(value) -> str:
    return "" if value is None or pd.isna(value) else f"{int(value):,}"


def _fmt(value, digits: int = 2, suffix: str = "") -> str:
    return "" if value is None or pd.isna(value) else f"{value:.{digits}f}{suffix}"


# ---- depth vs error (Table 6, Figure 6) ----------------------------------------------------------------

def residual_gain(plain_error, resnet_error, num_classes: int) -> tuple[float | None, str]:
    """Plain minus ResNet error, and its cell: empty without both, and no number where both nets ended near
    chance level (a difference of guesses is not a result)."""
    if plain_error is None or resnet_error is None or pd.isna(plain_error) or pd.isna(resnet_error):
        return None, ""
    if stats.near_chance(plain_error, num_classes) and stats.near_chance(resnet_error, num_classes):
        return None, "none: both near chance"
    return plain_error - resnet_error, _fmt(plain_error - resnet_error)


def depth_page(experiment, summary: pd.DataFrame, curves: pd.DataFrame, out_dir: Path,
               context: ReportContext = ReportContext()) -> Page:
    page = Page(experiment.key, experiment.title)
    specs = by_spec(summary)
    paper = reference("cifar10_depth")
    rows, shown = [], []
    depths = sorted({row["depth"] for row in specs.values() if row["family"] == "cifar"})
    for depth in depths:
        residual = next((r for r in specs.values() if r["depth"] == depth and not r["plain"]), None)
        plain = next((r for r in specs.values() if r["depth"] == depth and r["plain"]), None)
        published = paper[paper.depth == depth].set_index("source")

        def ref(source: str, column: str = "test_error"):
            if source not in published.index or pd.isna(published.loc[source, column]):
                return None
            return float(published.loc[source, column])

        resnet_mean = residual["test_error_mean"] if residual else None
        plain_mean = plain["test_error_mean"] if plain else None
        gain, gain_cell = residual_gain(plain_mean, resnet_mean, context.num_classes)
        any_row = residual or plain
        paper_params = published.loc["He et al. 2015 Table 6", "params"] if "He et al. 2015 Table 6" in published.index else None
        rows.append({
            "depth": depth, "params_ours": any_row["params"], "params_paper": paper_params,
            "plain_error_mean": plain_mean, "plain_error_std": plain["test_error_std"] if plain else None,
            "plain_seeds": plain["finished"] if plain else 0,
            "resnet_error_mean": resnet_mean, "resnet_error_std": residual["test_error_std"] if residual else None,
            "resnet_seeds": residual["finished"] if residual else 0,
            "paper_error": ref("He et al. 2015 Table 6"), "akamaster_error": ref("akamaster/pytorch_resnet_cifar10"),
            "chenyaofo_error": ref("chenyaofo/pytorch-cifar-models"), "residual_gain": gain,
        })
        shown.append({
            "depth": depth,
            "params (ours)": _fmt_int(any_row["params"]),
            "params (paper)": f"{paper_params / 1e6:.2f}M" if paper_params is not None and not pd.isna(paper_params) else "",
            "plain error % (ours)": error_cell(plain),
            "ResNet error % (ours)": error_cell(residual),
            "ResNet error % (paper)": _fmt(ref("He et al. 2015 Table 6")) + (
                f" ± {ref('He et al. 2015 Table 6', 'test_error_std'):.2f}"
                if ref("He et al. 2015 Table 6", "test_error_std") is not None else ""),
            "akamaster (option A, 200 ep.)": _fmt(ref("akamaster/pytorch_resnet_cifar10")),
            "chenyaofo (proj., cosine)": _fmt(ref("chenyaofo/pytorch-cifar-models")),
            "residual gain (plain − ResNet, points)": gain_cell,
        })
    if not rows:
        page.notes.append("No CIFAR nets are planned in this experiment (expensive runs need --expensive).")
        return page
    page.tables.append(Table("table6_depth", f"Table 6 analog: {context.where} test error (%) by depth",
                             pd.DataFrame(rows), pd.DataFrame(shown)))
    page.notes.append(
        "The paper's row for 110 layers is the mean ± std of 5 runs (best of 5: 6.43); the paper prints no "
        "errors for the plain CIFAR nets, only Figure 6. The public reproductions train longer or with another "
        "recipe (see their columns)."
    )
    if len(curves):
        path = figures.training_curves(curves, specs, out_dir / "figure6_curves.png", context.where,
                                       label=context.label, colors=context.colors)
        page.figures.append(("Figure 6 analog: training error (dashed) and test error (bold) against "
                             "iterations; plain nets left, ResNets right", path))
    path = figures.depth_vs_error(pd.DataFrame(rows), out_dir / "depth_vs_error.png", label=context.label)
    page.figures.append(("Test error against depth, plain vs residual, with the paper's ResNet points", path))
    return page


# ---- variant comparisons (shortcuts, tweaks, stems) -----------------------------------------------------

def _variant_rows(experiment, specs: dict[str, dict], page_axes: tuple[str, ...],
                  context: ReportContext) -> tuple[list[dict], list[dict]]:
    """One row per spec of the experiment: every axis and the results for the CSV; for the Markdown, the costs,
    the error, and a column for each option axis that varies between the specs but that the page does not
    already show in its own words (`page_axes`), so that a custom experiment still says what differs."""
    rows, shown = [], []
    present = [(spec, specs[spec]) for spec in experiment.runs + experiment.expensive if spec in specs]
    varying = [axis for axis in variants.Spec.option_axes() if axis.name not in page_axes
               and len({str(row[axis.name]) for _, row in present}) > 1]
    for spec, row in present:
        axes = {axis: row[axis] for axis in AXES if axis != "layers"}
        rows.append({"spec": spec, **axes, "blocks_per_stage": "-".join(map(str, row["layers"] or [])) or None,
                     "params": row["params"], "macs": row["macs"],
                     "test_error_mean": row["test_error_mean"], "test_error_std": row["test_error_std"],
                     "seeds": row["finished"]})
        cells = {"spec": f"`{spec}`"}
        # a value the net has not (a basic block's stride placement) reads as empty, not as pandas' NaN
        cells.update({axis.title: "" if _absent(row[axis.name]) else axis.show(row[axis.name]) for axis in varying})
        cells.update({"params": _fmt_int(row["params"]), f"MACs ({context.pixels})": f"{row['macs'] / 1e6:.1f}M",
                      "test error % (ours)": error_cell(row)})
        shown.append(cells)
    return rows, shown


def _absent(value) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


LOAD_NOTE = ("Training img/s is measured while the run trained: it depends on the device and on what else the "
             "machine ran at the time (other runs of the suite with --jobs, other programs), so it ranks variants "
             "only when they trained alone on an idle machine; a run that shared the machine can read several times "
             "slower than its twin that did not. For speed, use `python -m bench perf SPEC` on an idle "
             "machine: it times the suite's path against a standard PyTorch baseline in the same run.")


def cost_table(experiment, specs: dict[str, dict], context: ReportContext) -> Table | None:
    """Multiply-adds beside the training throughput the runs measured, apart from the error tables: throughput
    is a property of the machine and its load at the time, not of the variant alone."""
    present = [spec for spec in experiment.runs + experiment.expensive if spec in specs]
    if not any(specs[spec]["train_img_s"] is not None and not pd.isna(specs[spec]["train_img_s"]) for spec in present):
        return None
    rows = [{"spec": spec, "params": specs[spec]["params"], "macs": specs[spec]["macs"],
             "train_img_s": specs[spec]["train_img_s"], "devices": specs[spec]["devices"]} for spec in present]
    shown = [{"spec": f"`{row['spec']}`", f"MACs ({context.pixels})": f"{row['macs'] / 1e6:.1f}M",
              "train img/s (median over seeds; load-dependent)": _fmt(row["train_img_s"], 0),
              "device": row["devices"] or ""} for row in rows]
    return Table(f"{experiment.key}_cost", "Cost: multiply-adds and the throughput measured during training "
                 "(depends on machine load, see the notes)", pd.DataFrame(rows), pd.DataFrame(shown))


def comparison_panels(order: list[str], specs: dict[str, dict]) -> dict[str, list[str]]:
    """The specs grouped into figure panels of nets that compare with each other: one per family and depth
    (ResNet-32's options apart from ResNet-56's), one panel in all when they share it."""
    panels: dict[str, list[str]] = {}
    for spec in order:
        row = specs[spec]
        title = "timm nets" if row["family"] == "timm" else f"{int(row['depth'])} layers ({row['family']})"
        panels.setdefault(title, []).append(spec)
    return panels


def add_comparison_figures(page: Page, experiment, specs: dict[str, dict], curves: pd.DataFrame, out_dir: Path,
                           context: ReportContext, one_panel: bool = False, published: dict | None = None) -> None:
    """Curves (error against iterations per spec) and the final errors with their seed spread, for any
    experiment that compares variants; the cost table of the same specs. The curves are in one panel per
    family and depth (`comparison_panels`), or all in one (`one_panel`: every spec against the first).
    `published`: spec -> (the paper's error, its outcome such as "fail"), drawn beside ours in the errors' figure."""
    order = [spec for spec in experiment.runs + experiment.expensive if spec in specs]
    table = cost_table(experiment, specs, context)
    if table is not None:
        page.tables.append(table)
        page.notes.append(LOAD_NOTE)
    if not curves.empty:
        page.figures.append((f"Training (dashed) and test (bold) error against iterations on {context.where}, mean "
                             "over seeds, the band ± one std of the test error",
                             figures.comparison_curves(curves, {"": order} if one_panel
                                                       else comparison_panels(order, specs),
                                                       out_dir / f"{experiment.key}_curves.png", context.where,
                                                       label=context.label, colors=context.colors)))
    else:
        page.notes.append("No finished runs yet: the curves appear when one finishes.")
    estimates = {spec: stats.estimate(specs[spec]["test_errors"]) for spec in order}
    if any(estimate.n for estimate in estimates.values()):
        page.figures.append((f"Final test error per spec on {context.where}: the mean, its 95% confidence interval, "
                             "and each seed as a dot" + (", beside the paper's figure (hollow square; 'fail': above "
                                                        "20%)" if published else ""),
                             figures.error_intervals({spec: specs[spec]["test_errors"] for spec in order}, estimates,
                                                     out_dir / f"{experiment.key}_errors.png", context.where,
                                                     label=context.label, colors=context.colors,
                                                     published=published)))


def shortcuts_page(experiment, summary: pd.DataFrame, curves, out_dir: Path,
                   context: ReportContext = ReportContext()) -> Page:
    page = Page(experiment.key, experiment.title)
    rows, shown = _variant_rows(experiment, by_spec(summary), page_axes=("shortcut",), context=context)
    table3 = reference("imagenet_shortcuts").set_index("shortcut")
    for row, cells in zip(rows, shown):
        option = row["shortcut"]
        cells["shortcut"] = {"none": "none (plain)"}.get(option, f"option {option}")
        cells["ImageNet top-1 err. %, ResNet-34 (paper Table 3)"] = (
            _fmt(table3.loc[option, "top1_error"]) if option in table3.index else "")
    page.tables.append(Table("shortcuts", f"Shortcut options on {context.where}, with the paper's ImageNet figures",
                             pd.DataFrame(rows), _reorder(pd.DataFrame(shown), ["spec", "shortcut"])))
    page.notes.append(
        "Options (§3.3): A zero-pads the identity where the shape changes (no parameters), B projects only "
        "there, C projects on every block. The paper's column is ImageNet top-1 error of ResNet-34 (Table 3): "
        "a different dataset and net; compare the direction and size of the differences, not the values."
    )
    add_comparison_figures(page, experiment, by_spec(summary), curves, out_dir, context)
    return page


def tweaks_page(experiment, summary: pd.DataFrame, curves, out_dir: Path,
                context: ReportContext = ReportContext()) -> Page:
    page = Page(experiment.key, experiment.title)
    # The tweak letter says where the stride, the stem and the shortcut are.
    rows, shown = _variant_rows(experiment, by_spec(summary), page_axes=("stride_in", "stem", "shortcut"),
                                 context=context)
    table5 = reference("bag_of_tricks_table5").fillna({"tweak": "none"}).set_index("tweak")
    for row, cells in zip(rows, shown):
        tweak = row["tweak"] or "none"
        cells["tweak"] = "original" if tweak == "none" else f"ResNet-{tweak}"
        if tweak in table5.index:
            cells["ImageNet GFLOPs (BoT Table 5)"] = _fmt(table5.loc[tweak, "gflops"], 1)
            cells["ImageNet top-1 acc. % (BoT Table 5)"] = _fmt(table5.loc[tweak, "top1_accuracy"])
    page.tables.append(Table("tweaks", f"ResNet-50 and its B/C/D tweaks on {context.where}, with Bag of Tricks' "
                             "ImageNet figures", pd.DataFrame(rows), _reorder(pd.DataFrame(shown), ["spec", "tweak"])))
    page.notes.append(
        "ResNet-B strides in the bottleneck's 3x3 instead of its first 1x1; -C adds the deep stem (three 3x3 "
        f"convs); -D adds the avg-pool shortcut. These ImageNet nets run here on {context.pixels} images: the "
        "stem's stride-2 conv and max-pool downsample 4x, so the first stage works on "
        f"{_side(context.image_size, 4)} maps and the last on {_side(context.image_size, 32)}"
        + (" (ImageNet's are 56x56 and 7x7)" if context.image_size != 224 else "") + ". "
        f"Bag of Tricks' columns are ImageNet accuracy (higher is better) and GFLOPs at 224x224; ours are error "
        f"(lower is better) and MACs at {context.pixels}."
    )
    add_comparison_figures(page, experiment, by_spec(summary), curves, out_dir, context)
    return page


def stems_page(experiment, summary: pd.DataFrame, curves, out_dir: Path,
               context: ReportContext = ReportContext()) -> Page:
    page = Page(experiment.key, experiment.title)
    rows, shown = _variant_rows(experiment, by_spec(summary), page_axes=("stem", "stride_in"), context=context)
    for row, cells in zip(rows, shown):
        cells["block"] = row["block"]
        cells["stem"] = {"7x7": "7x7 conv", "deep": "3x 3x3 convs (deep)"}.get(row["stem"], row["stem"])
    page.tables.append(Table("stems", f"7x7 vs deep stem on {context.where}", pd.DataFrame(rows),
                             _reorder(pd.DataFrame(shown), ["spec", "block", "stem"])))
    page.notes.append(
        "The deep stem is Bag of Tricks' ResNet-C stem: three 3x3 convs of 32, 32 and 64 channels, the first "
        f"strided, in place of the 7x7/2 conv; both are followed by the 3x3/2 max-pool. At {context.pixels} inputs "
        f"both stems downsample 4x, to {_side(context.image_size, 4)}."
    )
    add_comparison_figures(page, experiment, by_spec(summary), curves, out_dir, context)
    return page


# ---- the follow-up papers: Identity Mappings' Tables 1-3, Wide ResNets, ResNeXt's Table 3 -------------------

FAIL_ERROR = 20.0  # Identity Mappings Table 1 reports a run above 20% test error as "fail"


def paper_outcome(row) -> str | None:
    """'fail' where Identity Mappings would print it (every seed diverged, or the mean above 20% test error), else
    None; a spec without runs has no outcome."""
    if row is None or (not row["finished"] and not row["diverged"]):
        return None
    if not row["finished"] or row["test_error_mean"] > FAIL_ERROR:
        return "fail"
    return None


def _fail_aware_cell(row) -> str:
    """Our error in the paper's words: 'fail: 34.20 ± 1.02 (n=2)', 'fail: 2 diverged', or the plain cell."""
    cell = error_cell(row)
    return f"fail: {cell}" if paper_outcome(row) == "fail" else cell


def _published_cell(value, outcome) -> str:
    return "fail" if isinstance(outcome, str) and outcome else _fmt(value)


def shortcut_designs_page(experiment, summary: pd.DataFrame, curves, out_dir: Path,
                          context: ReportContext = ReportContext()) -> Page:
    """Identity Mappings Table 1: what the shortcut carries on ResNet-110, with the paper's errors and its "fail"."""
    page = Page(experiment.key, experiment.title)
    specs = by_spec(summary)
    rows, shown = _variant_rows(experiment, specs, page_axes=("shortcut", "gate_bias"), context=context)
    table1 = reference("identity_shortcuts")
    built = table1.dropna(subset=["shortcut"])
    matched = set()
    for row, cells in zip(rows, shown):
        same = built[(built.shortcut == row["shortcut"]) & (built.gate_bias.isna() | (built.gate_bias == row["gate_bias"]))]
        published = same.iloc[0] if len(same) else None
        # the paper's Table 1 is of ResNet-110 alone: another net gets the design's words, not its figures
        figures_apply = published is not None and (row["family"], row["depth"]) == ("cifar", 110)
        if figures_apply:
            matched.add(published.name)
        design = (published.variant + (f", b_g {row['gate_bias']:g}" if row["shortcut"] in GATED_SHORTCUTS
                                       else "")) if published is not None else f"shortcut={row['shortcut']}"
        row.update(paper_error=published.test_error if figures_apply else None,
                   paper_outcome=published.outcome if figures_apply else None,
                   outcome=paper_outcome(specs[row["spec"]]))
        cells["design"] = design
        cells["on shortcut / on residual"] = ("" if published is None
                                              else f"{published.on_shortcut} / {published.on_residual}")
        cells["test error % (ours)"] = _fail_aware_cell(specs[row["spec"]])
        cells["test error % (paper Table 1)"] = _published_cell(row["paper_error"], row["paper_outcome"])
    page.tables.append(Table("table1_shortcut_designs", f"Identity Mappings Table 1 analog: shortcut designs on "
                             f"{context.where}", pd.DataFrame(rows),
                             _reorder(pd.DataFrame(shown), ["spec", "design", "on shortcut / on residual"])))
    left_out = table1[~table1.index.isin(matched)]
    page.notes.append(
        f"\"fail\" is the paper's word for a run above {FAIL_ERROR:.0f}% test error; ours says it the same way (or "
        "where every seed diverged), beside the error it stands for. g(x) = sigmoid(1x1 conv(x) + b_g); the gates' "
        "bias is the spec's `gate_bias`. Ours keep the 2015 CIFAR nets' option A where the width changes (the "
        "gates act on its zero-padded identity); the paper's errors are the median of 5 runs at the full recipe."
        + (" Rows of the paper's table this experiment does not train: " + "; ".join(
            f"{item.variant} {item.on_shortcut} / {item.on_residual} ({_published_cell(item.test_error, item.outcome)})"
            for item in left_out.itertuples()) + "." if len(left_out) else ""))
    add_comparison_figures(page, experiment, specs, curves, out_dir, context,
                           published={row["spec"]: (row["paper_error"], row["paper_outcome"]) for row in rows})
    return page


def units_page(experiment, summary: pd.DataFrame, curves, out_dir: Path,
               context: ReportContext = ReportContext()) -> Page:
    """Identity Mappings Tables 2 and 3: the units (where BN and ReLU sit) at each depth, with the paper's errors."""
    page = Page(experiment.key, experiment.title)
    specs = by_spec(summary)
    rows, shown = _variant_rows(experiment, specs, page_axes=("unit", "block", "stride_in"), context=context)
    paper = reference("identity_units")
    for row, cells in zip(rows, shown):
        match = paper[(paper.depth == row["depth"]) & (paper.unit == row["unit"]) & (row["family"] == "cifar")]
        row["paper_error"] = float(match.test_error.iloc[0]) if len(match) else None
        cells["depth"] = row["depth"]
        cells["block"] = row["block"]
        cells["unit"] = f"{row['unit']}: {UNITS[row['unit']].meaning}" if row["unit"] in UNITS else ""  # timm: none
        cells["test error % (ours)"] = _fail_aware_cell(specs[row["spec"]])
        cells["test error % (paper)"] = (_fmt(row["paper_error"]) + f" ({match.source.iloc[0].split()[-2]} "
                                         f"{match.source.iloc[0].split()[-1]})") if len(match) else ""
    page.tables.append(Table(f"{experiment.key}_units", f"Identity Mappings Table 2 / 3 analog: units by depth on "
                             f"{context.where}", pd.DataFrame(rows),
                             _reorder(pd.DataFrame(shown), ["spec", "depth", "block", "unit"])))
    page.notes.append(
        "The units of Identity Mappings Fig. 4: the addition's output passes through BN or ReLU in the first three, "
        "only the identity in the pre-activation ones. The pre-activation nets end with BN-ReLU before the pool and "
        "their projections are 1x1 convs without BN taking the pre-activated input, as the paper's; ResNet-110 "
        "keeps option A (zero-padding) where the width changes, ResNet-164 and -1001 project (option B). The paper's "
        "errors are the median of 5 runs at its full recipe (`identity`: every net warms up at lr 0.01 for 400 "
        "iterations); a spec above 20% reads \"fail\", as in its Table 1.")
    add_comparison_figures(page, experiment, specs, curves, out_dir, context,
                           published={row["spec"]: (row["paper_error"], None) for row in rows})
    return page


def wide_page(experiment, summary: pd.DataFrame, curves, out_dir: Path,
              context: ReportContext = ReportContext()) -> Page:
    """Width against depth (Wide ResNets): each net's parameters and MACs beside its error and the published one."""
    page = Page(experiment.key, experiment.title)
    specs = by_spec(summary)
    rows, shown = _variant_rows(experiment, specs, page_axes=("widen", "unit", "block", "shortcut", "stride_in"),
                                context=context)
    paper = reference("wide_resnets").set_index("spec")
    thinnest = min((row["macs"] for row in rows), default=None)
    for row, cells in zip(rows, shown):
        published = paper.loc[row["spec"]] if row["spec"] in paper.index else None
        row["paper_error"] = None if published is None else float(published.test_error)
        cells["net"] = _net_words(specs[row["spec"]])
        cells["x MACs of the cheapest"] = f"{row['macs'] / thinnest:.1f}x" if thinnest else ""
        cells["test error % (paper)"] = "" if published is None else (
            f"{published.test_error:.2f} ({published.source})")
    page.tables.append(Table("wide", f"Width against depth on {context.where}: cost and error", pd.DataFrame(rows),
                             _reorder(pd.DataFrame(shown), ["spec", "net"])))
    page.notes.append(
        "WRN-d-k (Zagoruyko & Komodakis 2016): (d-4)/6 pre-activation basic blocks per stage at 16k, 32k, 64k "
        "filters, 1x1 projections without BN where the width changes. Ours train at this suite's recipe, the "
        "2015 paper's (64k iterations of 128, lr 0.1 / 10 at 32k and 48k, wd 1e-4); the WRN paper's figures come "
        "from its own (200 epochs, Nesterov, wd 5e-4, lr / 5 at 60, 120, 160), so compare the ordering and the "
        "cost of each gain, not the values. A wide net's multiply-adds are its price: the cost table says what "
        "it bought.")
    add_comparison_figures(page, experiment, specs, curves, out_dir, context, one_panel=True,
                           published={row["spec"]: (row["paper_error"], None) for row in rows})
    return page


def _net_words(row) -> str:
    """'pre-activation ResNet-164 (bottleneck)', 'WRN-28-10': the row's net as the papers name it."""
    if row["family"] == "timm":
        return row["spec"]
    unit = "pre-activation " if row["unit"] == "preact" else ""
    if row["widen"] != 1:  # the WRN paper counts the shortcut projections' layers too: d = 6n + 4
        return f"WRN-{2 * sum(row['layers']) + 4}-{row['widen']}"
    return f"{unit}ResNet-{row['depth']} ({row['block']})"


def cardinality_page(experiment, summary: pd.DataFrame, curves, out_dir: Path,
                     context: ReportContext = ReportContext("ImageNet", 224, False, 1000)) -> Page:
    """ResNeXt Table 3: cardinality x bottleneck width at about ResNet-50's multiply-adds."""
    page = Page(experiment.key, experiment.title)
    specs = by_spec(summary)
    rows, shown = _variant_rows(experiment, specs, page_axes=("groups", "base_width"), context=context)
    paper = reference("resnext_table3")
    base = next((row["macs"] for row in rows if row["groups"] == 1), None)
    at_224 = {row["spec"]: measure(row["spec"], image_size=224, num_classes=1000) for row in rows}
    for row, cells in zip(rows, shown):
        match = paper[(paper.groups == row["groups"]) & (paper.base_width == row["base_width"])]
        column = "top1_error_101" if row["depth"] == 101 else "top1_error_50"
        row["paper_top1_error"] = float(match[column].iloc[0]) if len(match) and row["depth"] in (50, 101) else None
        row["macs_224"] = at_224[row["spec"]].macs
        cells["setting (C x Wd)"] = f"{row['groups']} x {row['base_width']}d"
        cells["MACs / 1 x 64d"] = f"{row['macs'] / base:.3f}" if base else ""
        cells["GMACs at 224x224"] = f"{row['macs_224'] / 1e9:.2f}"
        cells[f"ImageNet top-1 err. %, {row['depth']}-layer (ResNeXt Table 3)"] = _fmt(row["paper_top1_error"], 1)
    page.tables.append(Table("cardinality", f"ResNeXt Table 3 analog: cardinality at ResNet-50's cost on "
                             f"{context.where}", pd.DataFrame(rows),
                             _reorder(pd.DataFrame(shown), ["spec", "setting (C x Wd)"])))
    spread = [row["macs"] / base - 1 for row in rows] if base else []
    page.notes.append(
        "C x Wd: the first stage's 3x3 in C groups of W channels (C x W wide), the widths doubling each stage; "
        "torchvision's rule makes a bottleneck's inner width int(planes x W / 64) x C. Each setting is chosen "
        "for about ResNet-50's multiply-adds" + (f": ours differ from 1 x 64d by {min(spread):+.1%} to "
                                                   f"{max(spread):+.1%}" if spread else "") +
        ". All stride in the 3x3 (ResNeXt's blocks do), so 1 x 64d is ResNet-B. The paper's column is ImageNet-1K "
        f"top-1 error at 224x224; ours is {context.dataset}" + (f" ({context.num_classes} classes)"
                                                                 if context.num_classes != 1000 else "")
        + f" at {context.pixels}: compare the direction of the differences, not the values.")
    add_comparison_figures(page, experiment, specs, curves, out_dir, context, one_panel=True)
    return page


# ---- bottleneck cost (Table 1, Fig. 5): no training --------------------------------------------------------

def bottleneck_page(experiment, summary, curves, out_dir: Path, context: ReportContext = ReportContext()) -> Page:
    page = Page(experiment.key, experiment.title)
    table1 = reference("imagenet_cost").set_index("depth")
    rows, shown = [], []
    for depth in (18, 34, 50, 101, 152):
        original = measure(f"resnet{depth}", image_size=224)
        tweaked = measure(f"resnet{depth}b", image_size=224) if depth >= 50 else original
        paper = float(table1.loc[depth, "gflops"])
        rows.append({"depth": depth, "block": table1.loc[depth, "block"], "params": original.params,
                     "macs_original": original.macs, "macs_resnet_b": tweaked.macs, "paper_gflops": paper})
        shown.append({"net": f"ResNet-{depth}", "block": table1.loc[depth, "block"],
                      "blocks per stage": table1.loc[depth, "blocks_per_stage"], "params": _fmt_int(original.params),
                      "GMACs, stride in 1x1 (paper's)": f"{original.macs / 1e9:.2f}",
                      "GMACs, stride in 3x3 (ResNet-B)": f"{tweaked.macs / 1e9:.2f}",
                      "paper GFLOPs (Table 1)": f"{paper:.1f}",
                      "ours / paper": f"{original.macs / 1e9 / paper:.3f}"})
    page.tables.append(Table("table1_cost", "Table 1 analog: cost of the ImageNet nets at 224x224",
                             pd.DataFrame(rows), pd.DataFrame(shown)))

    from variants.layers import BasicBlock, BlockConfig, Bottleneck

    # Figure 5's two blocks, with the paper's weight counts (a published table, looked up by its rows)
    fig5 = reference("fig5_block_cost").set_index("block")
    bottleneck = BlockConfig(256, 64, shortcut="B", stride_in="1x1")
    blocks = [
        ("basic block on 64-d (two 3x3, 64)", BasicBlock(BlockConfig(64, 64, shortcut="B")), 64,
         int(fig5.loc["basic", "weights"])),
        ("bottleneck on 256-d (1x1 64, 3x3 64, 1x1 256), identity shortcut", Bottleneck(bottleneck), 256,
         int(fig5.loc["bottleneck", "weights"])),
        ("bottleneck on 256-d, projection shortcut (option C)", Bottleneck(replace(bottleneck, shortcut="C")), 256,
         None),
    ]
    block_rows, block_shown = [], []
    for name, block, width, paper_weights in blocks:
        weights = sum(m.weight.numel() for m in block.modules() if isinstance(m, nn.Conv2d))
        macs = _block_macs(block, width)
        block_rows.append({"block": name, "conv_weights": weights, "macs_56x56": macs, "paper_weights": paper_weights})
        block_shown.append({"block": name, "conv weights (ours)": f"{weights:,}",
                            "paper": f"{paper_weights:,}" if paper_weights else "2x the identity version (§4.1)",
                            "MMACs on 56x56": f"{macs / 1e6:.1f}"})
    base = block_rows[1]["conv_weights"]
    block_shown[2]["paper"] += f"; ours: {block_rows[2]['conv_weights'] / base:.2f}x"
    page.tables.append(Table("fig5_blocks", "Figure 5 analog: a basic block vs a bottleneck block",
                             pd.DataFrame(block_rows), pd.DataFrame(block_shown)))
    page.notes.append(
        "MACs are fvcore's multiply-adds of `model.eval()` at batch 1, the paper's FLOPs (§3.3). fvcore counts "
        "the convs, the fc, batch norm and the global average pool; it skips the residual adds and the max-pool "
        "(no handler) and ignores ReLU, so all columns leave those out (docs/variants.md: 'Cost of a model'). torchvision's and "
        "timm's ResNet-50/101/152 stride in the 3x3 (ResNet-B): their published 4.1/7.8/11.6 GFLOPs are our "
        "ResNet-B column. Two 3x3 convs at 256-d would have 1,179,648 weights: the bottleneck does the work "
        "of a 256-d block at the cost of a 64-d one (the paper's weight counts: bench/reference/fig5_block_cost.csv)."
    )
    return page


def _block_macs(block: nn.Module, width: int) -> int:
    return count_macs(block, torch.zeros(1, width, 56, 56))[0][""]


def _side(image_size: int, stride: int) -> str:
    side = max(1, -(-image_size // stride))  # each stride-2 step rounds up (padding 1)
    return f"{side}x{side}"


def _reorder(frame: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    return frame[first + [column for column in frame.columns if column not in first]] if len(frame) else frame


# ---- depth at ImageNet resolution (Table 2, Table 3's deeper nets) ---------------------------------------

def imagenet_depth_page(experiment, summary: pd.DataFrame, curves: pd.DataFrame, out_dir: Path,
                        context: ReportContext = ReportContext("ImageNet", 224, False, 1000)) -> Page:
    page = Page(experiment.key, experiment.title)
    specs = by_spec(summary)
    paper = reference("imagenet_depth")
    rows, shown = [], []
    for depth in sorted({row["depth"] for row in specs.values() if row["family"] == "imagenet"}):
        residual = next((r for r in specs.values() if r["depth"] == depth and not r["plain"]), None)
        plain = next((r for r in specs.values() if r["depth"] == depth and r["plain"]), None)

        def published(net: str):
            match = paper[(paper.depth == depth) & (paper.net == net)]
            return (float(match.top1_error.iloc[0]), match.source.iloc[0]) if len(match) else (None, None)

        paper_plain, _ = published("plain")
        paper_resnet, source = published("resnet")
        ours = {net: row["test_error_mean"] if row else None for net, row in (("plain", plain), ("resnet", residual))}
        gain, gain_cell = residual_gain(ours["plain"], ours["resnet"], context.num_classes)
        any_row = residual or plain
        rows.append({
            "depth": depth, "resnet_spec": residual["spec"] if residual else None,
            "plain_spec": plain["spec"] if plain else None, "params": any_row["params"], "macs": any_row["macs"],
            "plain_error_mean": ours["plain"], "plain_error_std": plain["test_error_std"] if plain else None,
            "resnet_error_mean": ours["resnet"], "resnet_error_std": residual["test_error_std"] if residual else None,
            "paper_plain_top1_error": paper_plain, "paper_resnet_top1_error": paper_resnet, "residual_gain": gain,
        })
        shown.append({
            "depth": depth, "ResNet (ours)": f"`{residual['spec']}`" if residual else "not in suite",
            "params": _fmt_int(any_row["params"]), f"MACs ({context.pixels})": f"{any_row['macs'] / 1e9:.2f}G",
            "plain error % (ours)": error_cell(plain), "ResNet error % (ours)": error_cell(residual),
            "plain top-1 err. % (paper)": _fmt(paper_plain),
            "ResNet top-1 err. % (paper)": _fmt(paper_resnet) + (f" ({source.split()[-2]} {source.split()[-1]})"
                                                               if source else ""),
            "residual gain (plain − ResNet, points)": gain_cell,
        })
    if not rows:
        page.notes.append("No ImageNet-family nets are planned in this experiment.")
        return page
    page.tables.append(Table("imagenet_depth", f"Table 2 / Table 3 analog: {context.where}, error (%) by depth",
                             pd.DataFrame(rows), pd.DataFrame(shown)))
    page.notes.append(
        f"Ours: single centre-crop top-1 error on the {context.dataset} validation split at {context.pixels}"
        + ("" if context.num_classes == 1000 else f", a {context.num_classes}-class problem")
        + ". The paper's: ImageNet (1000 classes) top-1 error with 10-crop testing, Table 2 for 18 and 34 layers "
        "(option A shortcuts), Table 3 for 50-152 (option B). Compare the direction and size of the gaps "
        "(plain against residual, deeper against shallower), not the values."
    )
    if len(curves):
        path = figures.training_curves(curves, specs, out_dir / "imagenet_depth_curves.png", context.where,
                                       evaluated="val", label=context.label, colors=context.colors)
        page.figures.append(("Table 2's figure (Figure 4) analog: training error (dashed) and validation error "
                             "(bold) against iterations; plain nets left, ResNets right", path))
    table = pd.DataFrame(rows)
    published_points = paper.rename(columns={"top1_error": "error"})
    path = figures.depth_vs_error(table, out_dir / "imagenet_depth_vs_error.png", published_points,
                                  paper_label="ResNet (paper, ImageNet 10-crop)",
                                  title=f"{context.where}: error against depth", ylabel="top-1 error (%)",
                                  label=context.label)
    page.figures.append(("Error against depth, plain vs residual, with the paper's ImageNet points (another dataset: "
                         "compare the shape)", path))
    return page


def compare_page(experiment, summary: pd.DataFrame, curves: pd.DataFrame, out_dir: Path,
                 context: ReportContext = ReportContext()) -> Page:
    """A generic comparison of any specs (`bench compare`, or report = "compare" in a suite file): costs, the
    statistics against the first spec, curves, and the final errors with their confidence intervals."""
    page = Page(experiment.key, experiment.title)
    specs = by_spec(summary)
    rows, shown = _variant_rows(experiment, specs, page_axes=(), context=context)
    page.tables.append(Table(experiment.key, f"The specs on {context.where}", pd.DataFrame(rows), pd.DataFrame(shown)))
    add_comparison_figures(page, experiment, specs, curves, out_dir, context, one_panel=True)
    return page  # the statistics table comes last, as on every page whose kind has a baseline (kinds.py)
