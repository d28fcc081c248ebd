"""Reports: the paper's tables and figures rebuilt from RESULTS/runs/*, beside the published figures.

`build()` writes RESULTS/reports/<suite>/<recipe>-x<scale>/: `index.md`, one Markdown page per experiment, a CSV
per table and PNG figures, and mirrors the tables and figures to a W&B report run. Every page says how its
figures were produced (recipe, scale, seeds, device, dataset, dates) and which runs are missing, diverged or
failed. A report is a function of the records of the runs a suite plans (its caller expands the suite: the
report package does not read suite files), drawn by the builder of each experiment's kind (kinds.py).
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from pathlib import Path

import pandas as pd

from .. import records
from .. import data as datasets
from .. import recipe as recipes
from ..tracking import upload_report
from . import figures, stats
from .kinds import KINDS, comparison_table
from .pages import Page, ReportContext
from .runs import aggregate, load_curves, load_runs


def build(suite, planned, results_dir: str | Path = "results", recipe: str = "", scale: float = 1.0, seeds: int = 1,
          wandb_mode: str | None = None) -> Path:
    """The report of every experiment of `suite` (suite.Suite), from the records of its `planned` runs
    (suite.expand of the whole suite, at `recipe`, `scale`, `seeds`): runs without a record show as missing."""
    runs = load_runs(results_dir, planned)
    out_dir = folder(suite.name, recipe, scale, results_dir)
    for key in suite.experiments:  # each page's files are named by its key: they stay in the report's folder
        records.within(out_dir, key)
    out_dir.mkdir(parents=True, exist_ok=True)
    context = _context(suite, recipe, scale, runs)
    groups = [experiment.runs + experiment.expensive for experiment in suite.experiments.values()]  # share figures
    every_spec = [spec for group in groups for spec in group]
    context = replace(context, colors=figures.spec_colors(every_spec, groups))  # a spec's colour in every figure
    pages = []
    for key in suite.experiments:
        experiment = suite.experiments[key]
        part = runs[runs.experiments.str.split(",").map(lambda names, key=key: key in names)] if len(runs) else runs
        summary = aggregate(part, context.num_classes, context.image_size) if len(part) else pd.DataFrame()
        # Curves of finished runs only, like the tables: a diverged or half-done run would bend the means.
        curves = load_curves(results_dir, part[part.status == "finished"]) if len(part) else pd.DataFrame()
        kind = KINDS[experiment.report]
        page = kind.build(experiment, summary, curves, out_dir,
                          replace(context, label=figure_label(part, recipe, scale, seeds)))
        if kind.baseline is not None and len(summary):
            table, notes = comparison_table(experiment, summary, context.num_classes)
            if table is not None:
                page.tables.append(table)
                page.notes += notes
        provenance = _provenance(part, experiment, suite, recipe, scale, seeds)
        _write_page(page, banner(recipe, scale, summary, context.num_classes) + provenance, out_dir)
        pages.append((page, part))
    _write_index(pages, suite, recipe, scale, seeds, runs, out_dir, results_dir)
    tables = {table.name: table.data for page, _ in pages for table in page.tables}
    images = {path.stem: path for page, _ in pages for _, path in page.figures}
    upload_report(wandb_mode, f"report {suite.name} {recipe} x{scale:g}", tables, images, Path(results_dir),
                  config={"suite": suite.name, "recipe": recipe, "scale": scale, "seeds": seeds}, marker_dir=out_dir)
    return out_dir


def folder(suite_name: str, recipe: str, scale: float, results_dir: str | Path = "results") -> Path:
    """RESULTS/reports/<suite>/<recipe>-x<scale>: one folder per recipe and scale, so that a quick look never
    overwrites a full run's report."""
    return records.within(Path(results_dir) / "reports", suite_name, f"{recipe}-x{scale:g}")


def _context(suite, recipe: str, scale: float, runs: pd.DataFrame) -> ReportContext:
    """The dataset's title, the resolution the recipe trains at, and the classes (a folder dataset's from its
    records; 1000 until one exists, which only sizes the fc layer of the cost columns)."""
    declared = datasets.info(suite.dataset)
    image_size = recipes.get(recipe, scale, declared.budget).image_size or declared.image_size
    num_classes = declared.num_classes
    if num_classes is None:
        counts = [int(n) for n in runs.get("num_classes", pd.Series(dtype=float)).dropna()]
        num_classes = counts[0] if counts else 1000
    return ReportContext(declared.title, image_size, declared.reader.one_size, num_classes)


def short_budget(recipe: str, scale: float) -> bool:
    """Whether runs of this recipe and scale train for less than the schedule the published figures used."""
    return recipe == "smoke" or scale < 1


def banner(recipe: str, scale: float, summary: pd.DataFrame | None = None, num_classes: int = 10) -> list[str]:
    """The warning a page opens with: a short budget's numbers are not the published ones' peers, and a page
    whose every finished spec ended near chance level (stats.near_chance) has nothing to compare."""
    errors = [] if summary is None or not len(summary) else [
        error for error in summary.test_error_mean if error is not None and not pd.isna(error)]
    at_chance = bool(errors) and all(stats.near_chance(error, num_classes) for error in errors)
    lines = []
    if short_budget(recipe, scale):
        what = ("the `smoke` recipe trains a few dozen iterations to check the pipeline" if recipe == "smoke" else
                f"recipe `{recipe}` at --scale {scale:g} trains {scale:g}x the schedule of the published figures")
        lines.append(f"> **Short budget: {what}. Its errors are far from converged and not comparable with the "
                     "published columns" + ("." if at_chance else "; compare variants with each other, and only as "
                                            "far as the statistics allow.") + "**\n")
    if at_chance:
        lines.append(f"> **Every run on this page ended near chance level (test errors {min(errors):.1f} to "
                     f"{max(errors):.1f}%; guessing is {stats.chance_error(num_classes):.0f}% on {num_classes} "
                     "classes): the nets learned too little for their differences to mean anything. Train longer (a "
                     "larger --scale, or the paper's recipe) before comparing.**\n")
    return lines


def figure_label(part: pd.DataFrame, recipe: str, scale: float, seeds: int) -> str:
    """The footer of every figure: recipe, scale, seeds and the devices the finished runs trained on."""
    devices = _devices(part[part.status == "finished"]) if len(part) else ""
    return (f"recipe {recipe} x{scale:g}" + (" (short budget: not comparable with published figures)"
                                             if short_budget(recipe, scale) else "")
            + f" · {_seeds(seeds)} · {devices or 'no finished runs'}")


def _devices(runs: pd.DataFrame) -> str:
    """'AMD EPYC (fp32), ...': the devices and precisions of these runs. Records the suite wrote for children
    that died early have no config: their empty fields are skipped."""
    return ", ".join(sorted({f"{device} ({precision})" for device, precision in zip(runs.device, runs.precision)
                             if isinstance(device, str)}))


def markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_no rows_\n"
    cells = frame.fillna("").astype(str).apply(lambda column: column.str.replace("|", "\\|", regex=False))
    lines = ["| " + " | ".join(frame.columns) + " |", "| " + " | ".join("---" for _ in frame.columns) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _seeds(seeds: int) -> str:
    return "seed 0" if seeds == 1 else f"seeds 0..{seeds - 1}"


def _provenance(part: pd.DataFrame, experiment, suite, recipe: str, scale: float, seeds: int) -> list[str]:
    if part.empty:
        if experiment.runs or experiment.expensive:
            return ["No runs of this experiment are planned (its runs are marked expensive: use --expensive)."]
        return ["This experiment trains nothing: its figures are computed from the models themselves."]
    present = part[part.status != "missing"]
    iterations = present.iterations_planned.dropna().unique()
    devices = _devices(present) or "-"
    dates = sorted(d for d in present.updated_at if isinstance(d, str))
    lines = [
        f"Produced from {len(part)} planned runs of suite `{suite.name}` on {suite.dataset}: recipe `{recipe}` "
        f"x{scale:g}" + (f" ({int(iterations[0]):,} iterations)" if len(iterations) == 1 else "")
        + f", {_seeds(seeds)}. Device: {devices}. Runs dated {dates[0][:10] if dates else '-'}"
        f" to {dates[-1][:10] if dates else '-'}; page built {datetime.date.today()}.",
        f"Finished: {int((part.status == 'finished').sum())} of {len(part)}. Errors are final test errors in %, "
        "mean ± std over finished seeds.",
    ]
    unplanned = [spec for spec in experiment.expensive if spec not in set(part.spec)]
    if unplanned:
        lines.append("Not planned: " + ", ".join(f"`{spec}`" for spec in unplanned)
                     + " (marked expensive: `--expensive` trains and reports them).")
    for status in ("missing", "diverged", "failed", "interrupted", "running"):
        names = part[part.status == status]
        if len(names):
            listed = ", ".join(f"`{spec}` seed {seed}" for spec, seed in zip(names.spec, names.seed))
            lines.append(f"{status.capitalize()}: {listed}.")
    code = code_versions(present)
    if code:
        lines.append(code)
    return lines


def code_versions(runs: pd.DataFrame) -> str | None:
    """Which code the recorded runs (none missing) came from, with a warning when it is not one version."""
    if runs.empty or "code" not in runs:
        return None
    counts = runs.code.fillna("unknown (not a git checkout)").value_counts(sort=False)
    dirty = " Uncommitted changes (`+diff`) are stored as `source.diff` in each run's folder." if any(
        "+diff" in label for label in counts.index) else ""
    listed = ", ".join(f"`{label}` ({count} run{'s' if count > 1 else ''})" for label, count in counts.items())
    if len(counts) == 1:
        return f"Code: {listed}.{dirty}"
    return (f"**Warning: these runs come from {len(counts)} versions of the code:** {listed}. A difference between "
            f"variants may come from the code, not from the variants.{dirty}")


def rounded(frame: pd.DataFrame) -> pd.DataFrame:
    """A table's numbers as its page shows them, for its CSV: to 2 decimals (3.17, not 3.1700000000000017),
    p-values to 3 significant digits (a p of 0.00026 is not 0.0)."""
    frame = frame.copy()
    for name in frame.columns:
        if pd.api.types.is_float_dtype(frame[name]):
            frame[name] = (frame[name].map(lambda value: float(f"{value:.3g}") if pd.notna(value) else value)
                           if "p_value" in name else frame[name].round(2))
    return frame


def _write_page(page: Page, provenance: list[str], out_dir: Path) -> None:
    parts = [f"# {page.title}\n", *[f"{line}\n" for line in provenance]]
    for table in page.tables:
        rounded(table.data).to_csv(out_dir / f"{table.name}.csv", index=False)
        parts += [f"## {table.title}\n", markdown_table(table.shown), f"CSV: [{table.name}.csv]({table.name}.csv)\n"]
    for caption, path in page.figures:
        parts += [f"![{caption}]({path.name})\n", f"_{caption}._\n"]
    if page.notes:
        parts += ["## Notes\n", *[f"- {note}" for note in page.notes], ""]
    (out_dir / f"{page.key}.md").write_text("\n".join(parts))


def _write_index(pages, suite, recipe, scale, seeds, runs: pd.DataFrame, out_dir: Path, results_dir) -> None:
    lines = [
        f"# resnet-bench: suite `{suite.name}` ({suite.dataset})\n",
        *banner(recipe, scale),
        f"Recipe `{recipe}` x{scale:g}, {_seeds(seeds)}; built {datetime.date.today()} from "
        f"`{Path(results_dir) / 'runs'}`.\n",
        "| experiment | runs finished | page |",
        "| --- | --- | --- |",
    ]
    for page, part in pages:
        finished = f"{int((part.status == 'finished').sum())} of {len(part)}" if len(part) else "no training"
        lines.append(f"| {page.title} | {finished} | [{page.key}.md]({page.key}.md) |")
    code = code_versions(runs[runs.status != "missing"]) if len(runs) else None
    if code:
        lines += ["", code]
    if len(runs) and (runs.status == "missing").all():
        lines += ["", _other_records_hint(results_dir, recipe, scale)]
    (out_dir / "index.md").write_text("\n".join(lines) + "\n")


def _other_records_hint(results_dir, recipe: str, scale: float) -> str:
    """When nothing matches, say which recipe/scale the records on disk do have."""
    found: dict[str, int] = {}
    for config_path in sorted(Path(results_dir, "runs").glob("*/config.json")):
        config = records.read_json(config_path) or {}
        recipe_config = config.get("recipe") or {}
        key = f"--recipe {recipe_config.get('name')} --scale {recipe_config.get('scale')}"
        found[key] = found.get(key, 0) + 1
    if not found:
        return f"No run records at all under `{Path(results_dir) / 'runs'}` yet."
    listed = "; ".join(f"`{key}` ({count} runs)" for key, count in found.items())
    return f"No records for recipe `{recipe}` x{scale:g}. Records on disk: {listed}."
