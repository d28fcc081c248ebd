"""Figures of the reports, drawn with seaborn to PNG (no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: reports are built on machines without a screen

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .runs import reference  # noqa: E402


def training_curves(curves: pd.DataFrame, specs: dict[str, dict], path: Path, dataset: str = "CIFAR-10",
                    evaluated: str = "test") -> Path:
    """Figure 6 of the paper: per depth, training error dashed and test error bold, plain | ResNet panels.
    A panel without finished runs says so instead of drawing empty axes."""
    frame = curves.copy()
    frame["depth"] = frame.spec.map(lambda spec: specs[spec]["depth"] if spec in specs else None)
    frame["net"] = frame.spec.map(lambda spec: "plain" if specs.get(spec, {}).get("plain") else "ResNet")
    frame = frame.dropna(subset=["depth"])
    # Mean over seeds at each logged iteration.
    frame = frame.groupby(["net", "depth", "iteration"], as_index=False)[["train/error", "test/error"]].mean()
    depths = sorted(frame.depth.unique())
    palette = dict(zip(depths, sns.color_palette("viridis", len(depths))))
    sns.set_theme(style="whitegrid", context="notebook")
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for axis, net in zip(axes, ("plain", "ResNet")):
        title = "plain nets" if net == "plain" else "ResNets"
        part = frame[frame.net == net]
        if part.empty:
            axis.text(0.5, 0.5, f"no finished {title} yet", transform=axis.transAxes, ha="center", va="center",
                      color="dimgray")
            axis.set_title(title)
            axis.set_xlabel("iteration")
            continue
        for depth in depths:
            lines = part[part.depth == depth].sort_values("iteration")
            if lines.empty:
                continue
            label = f"{'plain' if net == 'plain' else 'ResNet'}-{int(depth)}"
            axis.plot(lines.iteration, lines["train/error"], "--", color=palette[depth], linewidth=1)
            tested = lines.dropna(subset=["test/error"])
            axis.plot(tested.iteration, tested["test/error"], "-", color=palette[depth], linewidth=2.2, label=label)
        axis.set_title(title)
        axis.set_xlabel("iteration")
        # below the panel: error curves fill the upper corners, where a legend inside would hide them
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, fontsize=8, frameon=False)
    axes[0].set_ylabel("error (%)")
    figure.suptitle(f"Training error (dashed) and {evaluated} error (bold) on {dataset}", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def depth_vs_error(table: pd.DataFrame, path: Path, paper: pd.DataFrame | None = None,
                   paper_label: str = "ResNet (paper, 64k iterations)", title: str = "CIFAR-10 test error against depth",
                   ylabel: str = "test error (%)") -> Path:
    """Final error against depth: our plain and residual nets (mean ± std) and the paper's points (`paper`:
    depth, error and net columns; by default Table 6's CIFAR-10 ResNets)."""
    sns.set_theme(style="whitegrid", context="notebook")
    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    for column, label, color in (("plain", "plain (ours)", "tab:red"), ("resnet", "ResNet (ours)", "tab:blue")):
        part = table.dropna(subset=[f"{column}_error_mean"])
        if len(part):
            axis.errorbar(part.depth, part[f"{column}_error_mean"], yerr=part[f"{column}_error_std"].fillna(0),
                          marker="o", capsize=3, label=label, color=color)
    if paper is None:
        paper = reference("cifar10_depth")
        paper = paper[(paper.source == "He et al. 2015 Table 6")].assign(error=lambda f: f.test_error)
    paper = paper[paper.depth.isin(table.depth)]
    for net, color in (("plain", "tab:red"), ("resnet", "black")):
        points = paper[paper.net == net] if "net" in paper else paper
        if len(points):
            label = paper_label if net == "resnet" or "net" not in paper else paper_label.replace("ResNet", "plain")
            axis.plot(points.depth, points.error, "s--", color=color, label=label, markerfacecolor="white")
        if "net" not in paper:
            break
    axis.set_xscale("log")
    axis.xaxis.set_minor_formatter(NullFormatter())  # only the depths themselves are labelled
    axis.set_xticks(sorted(table.depth.unique()))
    axis.set_xticklabels([str(int(depth)) for depth in sorted(table.depth.unique())])
    axis.set_xlabel("depth (layers)")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=8, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def comparison_curves(curves: pd.DataFrame, order: list[str], path: Path, dataset: str) -> Path:
    """Per spec: training error dashed, test error bold (mean over seeds) with a ± std band over seeds."""
    sns.set_theme(style="whitegrid", context="notebook")
    figure, axis = plt.subplots(figsize=(8, 4.8))
    palette = dict(zip(order, sns.color_palette("colorblind", len(order))))
    for spec in order:
        part = curves[curves.spec == spec]
        if part.empty:
            continue
        train = part.groupby("iteration")["train/error"].mean()
        axis.plot(train.index, train.values, "--", color=palette[spec], linewidth=1)
        tested = part.dropna(subset=["test/error"]).groupby("iteration")["test/error"].agg(["mean", "std"])
        axis.plot(tested.index, tested["mean"], "-", color=palette[spec], linewidth=2.2, label=spec)
        axis.fill_between(tested.index, tested["mean"] - tested["std"].fillna(0),
                          tested["mean"] + tested["std"].fillna(0), color=palette[spec], alpha=0.18, linewidth=0)
    axis.set_xlabel("iteration")
    axis.set_ylabel("error (%)")
    axis.set_title(f"Training (dashed) and test (bold) error on {dataset}", fontsize=11)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(3, len(order)), fontsize=9, frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def error_intervals(errors: dict[str, list[float]], estimates: dict, path: Path, dataset: str) -> Path:
    """Final test error per spec: the mean (diamond), its 95% confidence interval (whiskers) and every seed
    (dots), on an axis zoomed to the data. Not bars from zero: differences of tenths of a point at errors of
    tens of percent would not show."""
    sns.set_theme(style="whitegrid", context="notebook")
    specs = list(errors)
    figure, axis = plt.subplots(figsize=(max(6.0, 1.8 * len(specs) + 2.0), 4.5))
    colors = sns.color_palette("colorblind", len(specs))
    for position, (spec, color) in enumerate(zip(specs, colors)):
        estimate = estimates[spec]
        if not estimate.n:
            axis.annotate("no finished run", (position, 0.5), xycoords=("data", "axes fraction"), ha="center",
                          color="dimgray")
            continue
        if estimate.low is not None:
            axis.errorbar(position, estimate.mean, yerr=[[estimate.mean - estimate.low], [estimate.high - estimate.mean]],
                          color=color, capsize=8, linewidth=2)
        axis.scatter([position] * len(errors[spec]), errors[spec], color="black", s=16, zorder=3, alpha=0.7)
        axis.scatter([position], [estimate.mean], color=color, marker="D", s=60, zorder=4, edgecolor="black")
    axis.set_xticks(range(len(specs)))
    axis.set_xticklabels(specs, rotation=15, ha="right", fontsize=9)
    axis.set_xlim(-0.6, len(specs) - 0.4)
    axis.set_ylabel("final test error (%)")
    axis.set_title(f"Final test error on {dataset}\nmean (diamond), 95% CI of the mean (whiskers), seeds (dots)",
                   fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
