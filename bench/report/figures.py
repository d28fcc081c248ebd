"""Figures of the reports, drawn with seaborn to PNG (no display needed)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: reports are built on machines without a screen

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .runs import reference  # noqa: E402

FOOTER_ROOM = 0.06  # share of the figure's height kept under the axes for the footer that says how it was produced


def _footer(figure, label: str) -> None:
    """Recipe, scale, seeds and device under the figure, so that a figure copied out of its page still says
    what it shows; then the layout, leaving the footer its room."""
    lines = 0
    if label:  # in lines that fit the figure's width (8 pt: about 15 characters an inch), not cut at its edges
        text = textwrap.fill(label, max(40, int(figure.get_figwidth() * 15)))
        lines = text.count("\n") + 1
        figure.text(0.5, 0.01, text, ha="center", va="bottom", fontsize=8, color="dimgray")
    # Twice: a legend under an axis is anchored in axis units, so it moves up when the first pass shrinks the
    # axis; the second pass gives back the room the first one reserved for it (Figure 6 had a band of white).
    for _ in range(2):
        figure.tight_layout(rect=(0, FOOTER_ROOM * lines, 1, 1))


def _say_nothing(axis, text: str) -> None:
    """An axis without data says so in words, without ticks that would suggest a 0-1 scale."""
    axis.text(0.5, 0.5, text, transform=axis.transAxes, ha="center", va="center", color="dimgray")
    axis.set_xticks([])
    axis.grid(False)


def spec_colors(specs, groups=None) -> dict:
    """One colour per spec for every figure of a report (the report passes the suite's specs in order, and as
    `groups` the specs of each experiment, which share its figures), so that `resnet32` is the same colour in
    Figure 6 as in the shortcut curves. Qualitative colours, not a sequential palette: five depths on viridis put
    32, 44 and 56 in three blues a reader cannot tell apart. Up to 10 specs, seaborn's colour-blind palette.
    Beyond, each spec in turn takes, from 48 hues at two lightnesses, the colour farthest from those the specs
    it shares a figure with already have: a suite of 20 specs on one wheel gave two of the 5 specs of
    Imagenette's cardinality figure the same pink."""
    specs = list(dict.fromkeys(specs))
    if len(specs) <= 10:
        return dict(zip(specs, sns.color_palette("colorblind", max(len(specs), 1))))
    groups = [list(group) for group in groups] if groups else [specs]
    candidates = sns.husl_palette(24, l=0.6) + sns.husl_palette(24, l=0.4, h=0.5 / 24)
    colors: dict = {}
    for spec in specs:
        companions = {other for group in groups if spec in group for other in group} - {spec}
        near = [colors[other] for other in companions if other in colors] or list(colors.values())
        taken = set(colors.values())
        colors[spec] = max(candidates, key=lambda color: (min((math.dist(color, other) for other in near),
                                                              default=0.0), color not in taken))
    return colors


def _colors(colors: dict | None, order) -> dict:
    """The report's colours, with a colour of its own for any spec it did not name (a figure drawn alone)."""
    colors = dict(colors or {})
    missing = [spec for spec in order if spec not in colors]
    if missing:
        colors.update({spec: color for spec, color in spec_colors(list(colors) + missing).items() if spec in missing})
    return colors


def legend_columns(entries: int, most: int = 4) -> int:
    """Columns for a legend under the axes in rows as even as they go: 5 entries as 3 + 2, not 4 + 1 alone."""
    rows = max(1, math.ceil(entries / most))
    return max(1, math.ceil(entries / rows))


def training_curves(curves: pd.DataFrame, specs: dict[str, dict], path: Path, dataset: str = "CIFAR-10",
                    evaluated: str = "test", label: str = "", colors: dict | None = None) -> Path:
    """Figure 6 of the paper: per depth, training error dashed and test error bold, plain | ResNet panels.
    A panel without finished runs says so in words instead of drawing empty axes and an empty legend."""
    frame = curves.copy()
    frame["depth"] = frame.spec.map(lambda spec: specs[spec]["depth"] if spec in specs else None)
    frame["net"] = frame.spec.map(lambda spec: "plain" if specs.get(spec, {}).get("plain") else "ResNet")
    frame = frame.dropna(subset=["depth"])
    # Mean over seeds at each logged iteration.
    frame = frame.groupby(["net", "depth", "spec", "iteration"], as_index=False)[["train/error", "test/error"]].mean()
    depths = sorted(frame.depth.unique())
    palette = _colors(colors, sorted(frame.spec.unique()))
    sns.set_theme(style="whitegrid", context="notebook")
    figure, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    for axis, net in zip(axes, ("plain", "ResNet")):
        title = "plain nets" if net == "plain" else "ResNets"
        part = frame[frame.net == net]
        if part.empty:
            _say_nothing(axis, f"no finished {title} yet")
            axis.set_title(title)
            continue
        drawn = 0
        for depth in depths:
            for spec in sorted(part[part.depth == depth].spec.unique()):
                lines = part[part.spec == spec].sort_values("iteration")
                name = f"{'plain' if net == 'plain' else 'ResNet'}-{int(depth)}"
                name += f" ({spec})" if part[part.depth == depth].spec.nunique() > 1 else ""
                axis.plot(lines.iteration, lines["train/error"], "--", color=palette[spec], linewidth=1)
                tested = lines.dropna(subset=["test/error"])
                axis.plot(tested.iteration, tested["test/error"], "-", color=palette[spec], linewidth=2.2,
                          label=name, gid=spec)
                drawn += 1
        axis.set_title(title)
        axis.set_xlabel("iteration")
        # below the panel: error curves fill the upper corners, where a legend inside would hide them
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=legend_columns(drawn), fontsize=8,
                    frameon=False)
    axes[0].set_ylabel("error (%)")
    figure.suptitle(f"Training error (dashed) and {evaluated} error (bold) on {dataset}", fontsize=11)
    _footer(figure, label)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def depth_vs_error(table: pd.DataFrame, path: Path, paper: pd.DataFrame | None = None,
                   paper_label: str = "ResNet (paper, 64k iterations)", title: str = "CIFAR-10 test error against depth",
                   ylabel: str = "test error (%)", label: str = "") -> Path:
    """Final error against depth: our plain and residual nets (mean ± std) and the paper's points (`paper`:
    depth, error and net columns; by default Table 6's CIFAR-10 ResNets)."""
    sns.set_theme(style="whitegrid", context="notebook")
    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    for column, name, color in (("plain", "plain (ours)", "tab:red"), ("resnet", "ResNet (ours)", "tab:blue")):
        part = table.dropna(subset=[f"{column}_error_mean"])
        if len(part):
            axis.errorbar(part.depth, part[f"{column}_error_mean"], yerr=part[f"{column}_error_std"].fillna(0),
                          marker="o", capsize=3, label=name, color=color)
    if paper is None:
        paper = reference("cifar10_depth")
        paper = paper[(paper.source == "He et al. 2015 Table 6")].assign(error=lambda f: f.test_error)
    paper = paper[paper.depth.isin(table.depth)]
    ours = pd.concat([table[f"{column}_error_mean"] for column in ("plain", "resnet")]).dropna().astype(float)
    # A short run's errors (tens of percent) and the paper's (6-9%) on one axis squeeze ours into a band: the
    # paper's points get an axis of their own where the two differ by more than a factor of two.
    apart = len(ours) and len(paper) and ours.min() > 2 * paper.error.max()
    paper_axis = axis.twinx() if apart else axis
    for net, color in (("plain", "tab:red"), ("resnet", "black")):
        points = paper[paper.net == net] if "net" in paper else paper
        if len(points):
            name = paper_label if net == "resnet" or "net" not in paper else paper_label.replace("ResNet", "plain")
            paper_axis.plot(points.depth, points.error, "s--", color=color, markerfacecolor="white",
                            label=name + (" (right axis)" if apart else ""))
        if "net" not in paper:
            break
    if apart:
        paper_axis.set_ylabel(f"{ylabel}, paper (right axis)", color="dimgray")
        paper_axis.grid(False)
        handles = [handle for ax in (axis, paper_axis) for handle in ax.get_legend_handles_labels()[0]]
        labels = [text for ax in (axis, paper_axis) for text in ax.get_legend_handles_labels()[1]]
    axis.set_xscale("log")
    axis.xaxis.set_minor_formatter(NullFormatter())  # only the depths themselves are labelled
    axis.set_xticks(sorted(table.depth.unique()))
    axis.set_xticklabels([str(int(depth)) for depth in sorted(table.depth.unique())])
    axis.set_xlabel("depth (layers)")
    axis.set_ylabel(ylabel + (", ours (left axis)" if apart else ""))
    axis.set_title(title)
    if apart:  # under the axes: inside, the two axes' lines have no free corner in common
        axis.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                    ncol=legend_columns(len(labels), 2), frameon=False)
    else:
        axis.legend(fontsize=8, loc="best")
    _footer(figure, label)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def comparison_curves(curves: pd.DataFrame, panels: dict[str, list[str]], path: Path, dataset: str,
                      label: str = "", colors: dict | None = None) -> Path:
    """Per spec: training error dashed, test error bold (mean over seeds) with a ± std band over seeds; one
    panel per group of specs that compare with each other (`panels`: title -> specs, e.g. one per depth). A
    spec without finished runs is named in its panel, not drawn."""
    sns.set_theme(style="whitegrid", context="notebook")
    figure, axes = plt.subplots(1, len(panels), figsize=(max(8.0, 5.5 * len(panels)), 5.2), sharey=True,
                                squeeze=False)
    for axis, (title, order) in zip(axes[0], panels.items()):
        palette = _colors(colors, order)
        drawn = [spec for spec in order if not curves[curves.spec == spec].empty]
        for spec in drawn:
            part = curves[curves.spec == spec]
            train = part.groupby("iteration")["train/error"].mean()
            axis.plot(train.index, train.values, "--", color=palette[spec], linewidth=1)
            tested = part.dropna(subset=["test/error"]).groupby("iteration")["test/error"].agg(["mean", "std"])
            axis.plot(tested.index, tested["mean"], "-", color=palette[spec], linewidth=2.2, label=spec, gid=spec)
            axis.fill_between(tested.index, tested["mean"] - tested["std"].fillna(0),
                              tested["mean"] + tested["std"].fillna(0), color=palette[spec], alpha=0.18, linewidth=0)
        missing = [spec for spec in order if spec not in drawn]
        if not drawn:
            _say_nothing(axis, "no finished runs yet:\n" + "\n".join(missing))
        else:
            axis.set_xlabel("iteration")
            axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=legend_columns(len(drawn), 2),
                        fontsize=9, frameon=False)
        # the title line, not the plot area, says what is not drawn: text inside would cover curves
        heading = [title] if len(panels) > 1 else []
        if missing and drawn:
            heading.append(textwrap.fill("no finished run yet: " + ", ".join(missing), 72))
        if heading:
            axis.set_title("\n".join(heading), fontsize=9)
    axes[0][0].set_ylabel("error (%)")
    figure.suptitle(f"Training (dashed) and test (bold) error on {dataset}; band: ± one std over seeds", fontsize=11)
    _footer(figure, label)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def error_intervals(errors: dict[str, list[float]], estimates: dict, path: Path, dataset: str,
                    label: str = "", colors: dict | None = None, published: dict | None = None) -> Path:
    """Final test error per spec: the mean (diamond), its 95% confidence interval (whiskers) and every seed
    (dots), on an axis zoomed to the data. Not bars from zero: differences of tenths of a point at errors of
    tens of percent would not show. `published`: spec -> (the paper's error, its outcome), a hollow square
    beside ours ("fail" written where the paper printed it), on an axis of its own when far from ours."""
    sns.set_theme(style="whitegrid", context="notebook")
    specs = list(errors)
    # each spec gets room for its longest tick line (8 pt: about 0.06 in a character), so neighbours never touch
    room = max([1.3] + [0.06 * len(line) for spec in specs for line in tick_label(spec).splitlines()])
    figure, axis = plt.subplots(figsize=(max(6.0, room * len(specs) + 2.0), 4.8 + 0.25 * _option_lines(specs)))
    palette = _colors(colors, specs)
    for position, spec in enumerate(specs):
        color = palette[spec]
        estimate = estimates[spec]
        if not estimate.n:
            axis.annotate("no finished\nrun", (position, 0.5), xycoords=("data", "axes fraction"), ha="center",
                          va="center", fontsize=8, color="dimgray")
            continue
        if estimate.low is not None:
            axis.errorbar(position, estimate.mean, yerr=[[estimate.mean - estimate.low], [estimate.high - estimate.mean]],
                          color=color, capsize=8, linewidth=2)
        axis.scatter([position] * len(errors[spec]), errors[spec], color="black", s=16, zorder=3, alpha=0.7)
        axis.scatter([position], [estimate.mean], color=color, marker="D", s=60, zorder=4, edgecolor="black", gid=spec)
    axis.set_xticks(range(len(specs)))
    axis.set_xticklabels([tick_label(spec) for spec in specs], fontsize=8)
    axis.set_xlim(-0.6, len(specs) - 0.4)
    axis.margins(y=0.12)  # a point on the edge of the axes reads as cut off
    axis.set_ylabel("final test error (%)")
    if published:
        _published_points(axis, specs, published, [estimate.mean for estimate in estimates.values() if estimate.n])
    spread = ("mean (diamond), 95% CI of the mean (whiskers), seeds (dots)"
              if any(estimate.n > 1 for estimate in estimates.values())
              else "one seed per spec: no interval can be drawn (train with --seeds 3 or more)")
    axis.set_title(f"Final test error on {dataset}\n{spread}", fontsize=10)
    _footer(figure, label)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def tick_label(spec: str) -> str:
    """A spec on an axis: its preset, then each option on a line of its own, so long specs do not overlap."""
    name, _, options = spec.partition("(")
    return "\n".join([name, *options.rstrip(")").split(",")]) if options else name


def _option_lines(specs) -> int:
    return max((tick_label(spec).count("\n") for spec in specs), default=0)


def _published_points(axis, specs: list[str], published: dict, ours: list[float]) -> None:
    """The paper's figure per spec as a hollow square right of ours; its "fail" as the word, at the top. Where our
    errors are more than twice the paper's (a short budget), the squares get the right axis, as in depth_vs_error."""
    points = [(position, float(published[spec][0])) for position, spec in enumerate(specs)
              if spec in published and published[spec][0] is not None and not pd.isna(published[spec][0])]
    fails = [position for position, spec in enumerate(specs)
             if spec in published and isinstance(published[spec][1], str) and published[spec][1]]
    apart = bool(points and ours and min(ours) > 2 * max(error for _, error in points))
    paper_axis = axis.twinx() if apart else axis
    if points:
        paper_axis.scatter([position + 0.22 for position, _ in points], [error for _, error in points], marker="s",
                           s=46, facecolor="white", edgecolor="black", zorder=5, gid="paper")
    for position in fails:
        axis.annotate("paper:\nfail", (position + 0.22, 0.97), xycoords=("data", "axes fraction"), ha="center",
                      va="top", fontsize=7, color="black")
    if apart:
        paper_axis.set_ylabel("paper's test error (%), right axis (hollow squares)", color="dimgray", fontsize=9)
        paper_axis.grid(False)
        paper_axis.margins(y=0.2)
    elif points:
        axis.scatter([], [], marker="s", facecolor="white", edgecolor="black", label="paper (hollow square)")
        axis.legend(fontsize=8, loc="best")
