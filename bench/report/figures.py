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


def training_curves(curves: pd.DataFrame, specs: dict[str, dict], path: Path) -> Path:
    """Figure 6 of the paper: per depth, training error dashed and test error bold, plain | ResNet panels."""
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
        axis.legend(loc="upper right", fontsize=8)
    axes[0].set_ylabel("error (%)")
    figure.suptitle("Training error (dashed) and test error (bold) on CIFAR-10", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def depth_vs_error(table: pd.DataFrame, path: Path) -> Path:
    """Final test error against depth: our plain and residual nets (mean ± std), the paper's ResNets."""
    sns.set_theme(style="whitegrid", context="notebook")
    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    for column, label, color in (("plain", "plain (ours)", "tab:red"), ("resnet", "ResNet (ours)", "tab:blue")):
        part = table.dropna(subset=[f"{column}_error_mean"])
        if len(part):
            axis.errorbar(part.depth, part[f"{column}_error_mean"], yerr=part[f"{column}_error_std"].fillna(0),
                          marker="o", capsize=3, label=label, color=color)
    paper = reference("cifar10_depth")
    paper = paper[(paper.source == "He et al. 2015 Table 6") & paper.depth.isin(table.depth)]
    axis.plot(paper.depth, paper.test_error, "s--", color="black", label="ResNet (paper, 64k iterations)",
              markerfacecolor="white")
    axis.set_xscale("log")
    axis.xaxis.set_minor_formatter(NullFormatter())  # only the depths themselves are labelled
    axis.set_xticks(sorted(table.depth.unique()))
    axis.set_xticklabels([str(int(depth)) for depth in sorted(table.depth.unique())])
    axis.set_xlabel("depth (layers)")
    axis.set_ylabel("test error (%)")
    axis.set_title("CIFAR-10 test error against depth")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
