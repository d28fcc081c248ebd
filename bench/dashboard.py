"""W&B dashboards of a suite: a saved workspace and a report, defined in code from the suite file.

`python -m bench dashboard SUITE` writes both definitions as JSON to
RESULTS/reports/<suite>/<recipe>-x<scale>/wandb/{workspace.json,report.json}, beside the Markdown report of the
same suite, recipe and scale; with --publish it saves them to W&B (an API key and network needed) and prints
their URLs. Nothing here reads W&B's runs: the panels name the keys that tracking.py makes every training run
log, so a dashboard defined before any run shows the runs as they arrive.

Both show the suite's training runs (job type `train`) of its dataset, recipe and scale, grouped by `spec`
(lines and bars are the mean over seeds, bands and whiskers one standard deviation). Per experiment:

- test/error and train/error against `iteration`;
- the final test error per spec (summary `test_error_final`);
- MACs (summary `macs`, log scale) against the final test error, one point per run;
- parallel coordinates over the variant axes that differ between the experiment's specs (config
  `variant_<axis>`) and the final test error.

The workspace has one section per experiment; since a workspace has a single run set, its sections show every
run of the suite. The report has a heading per experiment with the text and tables of its Markdown page (when
`bench report` has written it) and the same panels in a grid whose run set holds the experiment's specs only.
An experiment that trains nothing (the bottleneck cost comparison) gets its text, and no charts.

JSON definitions are the library's own models (wandb_workspaces' `_to_model()`), serialized without network.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import variants

from . import data as datasets
from . import recipe as recipes
from . import suite as suites
from . import tracking
from .errors import UserError
from .report import folder as report_folder

PLACEHOLDER_ENTITY = "YOUR-ENTITY"  # in definitions written without --entity; publishing uses your default entity
REACHABILITY_TIMEOUT_S = 10  # a W&B server that does not answer within this is "no network", not a hang

# Panel titles, one per chart kind; tests and users find panels by them.
TEST_CURVE = "test error (%) vs iteration: mean ± std over seeds"
TRAIN_CURVE = "train error (%) vs iteration: mean ± std over seeds"
FINAL_ERROR_BARS = "final test error (%) per spec: mean ± std over seeds"
COST_SCATTER = "MACs vs final test error (%), one point per run"
AXES_PARALLEL = "variant axes and final test error (%)"
SPEC_KEY = "spec"  # the flat config key runs are grouped by (tracking.FLAT_CONFIG_KEYS)


@dataclass
class Dashboard:
    """The two definitions of one suite, recipe and scale, and the folder their JSON belongs in."""

    suite: suites.Suite
    recipe: str
    scale: float
    workspace: object  # wandb_workspaces.workspaces.Workspace
    report: object  # wandb_workspaces.reports.v2.Report
    folder: Path


def definitions_folder(suite: suites.Suite, recipe: str, scale: float, results_dir: str | Path) -> Path:
    """RESULTS/reports/<suite>/<recipe>-x<scale>/wandb: inside the Markdown report's folder."""
    return report_folder(suite.name, recipe, scale, results_dir) / "wandb"


def build(suite: str | suites.Suite, recipe: str | None = None, scale: float = 1.0,
          results_dir: str | Path = "results", entity: str = PLACEHOLDER_ENTITY, project: str = tracking.PROJECT,
          link_runsets: bool = False) -> Dashboard:
    """The workspace and the report of a suite (its own recipe when `recipe` is None). No network unless
    `link_runsets`: the report's run sets then name `entity`/`project`, which the library resolves to the
    project's id over the network when serializing (publishing needs that; a written definition does not)."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    suite = suite if isinstance(suite, suites.Suite) else suites.load(suite)
    recipe = suite.recipe_or_default(recipe)
    recipes.get(recipe, scale, datasets.info(suite.dataset).budget)  # a bad recipe or scale: one clear error
    folder = definitions_folder(suite, recipe, scale, results_dir)
    label = f"{suite.name} ({suite.dataset}), recipe {recipe} x{scale:g}"
    suite_runs = _suite_filter(suite, recipe, scale, [spec for key in suite.experiments
                                                       for spec in _specs(suite.experiments[key])])

    sections, blocks = [], [wr.TableOfContents(), wr.P(text=_introduction(suite, recipe, scale))]
    for key, experiment in suite.experiments.items():
        specs = _specs(experiment)
        page = _page_text(folder.parent / f"{key}.md", suite, recipe, scale)
        blocks.append(wr.H1(text=experiment.title))
        blocks.append(wr.MarkdownBlock(text=page) if page else wr.P(text=_no_page_yet(suite, recipe, scale)))
        if not specs:
            note = ("This experiment trains nothing: its tables and figures are computed from the models themselves "
                    "(`python -m bench report` writes them; the W&B report shows its text).")
            sections.append(ws.Section(name=experiment.title, is_open=True, panels=[wr.MarkdownPanel(markdown=note)]))
            continue
        axes = _varying_axes(specs)
        sections.append(ws.Section(
            name=experiment.title, is_open=True, panels=_panels(wr, axes, report=False),
            layout_settings=ws.SectionLayoutSettings(columns=2, rows=3),
            panel_settings=ws.SectionPanelSettings(x_axis=tracking.STEP_METRIC),
        ))
        runset = wr.Runset(entity=entity if link_runsets else "", project=project if link_runsets else "",
                           name=f"{key}: {len(specs)} specs", groupby=[f"config.{SPEC_KEY}"])
        _set_filters(runset, _suite_filter(suite, recipe, scale, specs))
        blocks.append(wr.PanelGrid(runsets=[runset], panels=_panels(wr, axes, report=True)))

    workspace = ws.Workspace(
        entity=entity, project=project, name=f"resnet-bench {label}"[:128], sections=sections,
        settings=ws.WorkspaceSettings(x_axis=tracking.STEP_METRIC, max_runs=200),
        runset_settings=ws.RunsetSettings(groupby=[ws.Config(SPEC_KEY)]),
    )
    _set_filters(workspace, suite_runs)
    report = wr.Report(entity=entity, project=project, title=f"resnet-bench: suite {label}"[:128],
                       description=f"Training runs of suite {label}, grouped by spec; mirrors the Markdown pages "
                                   f"under {folder.parent}.", blocks=blocks, width="fluid")
    return Dashboard(suite, recipe, scale, workspace, report, folder)


def definitions(dashboard: Dashboard) -> dict[str, dict]:
    """The JSON-ready definitions {"workspace": ..., "report": ...}: what W&B stores for a view and a report."""
    return {name: getattr(dashboard, name)._to_model().model_dump(by_alias=True, exclude_none=True, mode="json")
            for name in ("workspace", "report")}


def write(suite: str | suites.Suite, recipe: str | None = None, scale: float = 1.0,
          results_dir: str | Path = "results", entity: str = PLACEHOLDER_ENTITY,
          project: str = tracking.PROJECT) -> dict[str, Path]:
    """Write workspace.json and report.json; returns their paths by name. No network."""
    dashboard = build(suite, recipe, scale, results_dir, entity, project)
    dashboard.folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, definition in definitions(dashboard).items():
        paths[name] = dashboard.folder / f"{name}.json"
        paths[name].write_text(json.dumps(definition, indent=1) + "\n")
    return paths


def publish(suite: str | suites.Suite, recipe: str | None = None, scale: float = 1.0,
            results_dir: str | Path = "results", entity: str | None = None,
            project: str = tracking.PROJECT) -> dict[str, str]:
    """Write the definitions, then save the workspace and the report to W&B; returns their URLs by name.

    Without an API key this fails before any network call; a server that does not answer within
    REACHABILITY_TIMEOUT_S, and any error while saving, end as one UserError line: publishing should not
    sit in the W&B client's retries for minutes."""
    paths = write(suite, recipe, scale, results_dir, entity or PLACEHOLDER_ENTITY, project)
    written = f"the definitions are written to {paths['workspace'].parent}"
    if not tracking.api_key_configured():
        raise UserError(f"--publish needs a W&B API key (wandb login or WANDB_API_KEY) and network; {written}")
    base_url = _reachable_server(written)
    try:
        import wandb

        entity = entity or wandb.Api(timeout=REACHABILITY_TIMEOUT_S).default_entity
        if not entity:
            raise UserError(f"your W&B account has no default entity: give one with --entity; {written}")
        dashboard = build(suite, recipe, scale, results_dir, entity, project, link_runsets=True)
        dashboard.report.save()  # first: it creates the project when it does not exist, which a view needs
        dashboard.workspace.save()
        return {"workspace": dashboard.workspace.url, "report": dashboard.report.url}
    except UserError:
        raise
    except Exception as error:  # bad key, no such entity, the connection lost: the client's many kinds
        detail = (str(error).strip().splitlines() or [""])[0][:300]
        raise UserError(f"publishing to W&B at {base_url} failed ({type(error).__name__}: {detail}); {written}") \
            from None


# ---- parts -----------------------------------------------------------------------------------------------------

def _specs(experiment: suites.Experiment) -> list[str]:
    """The experiment's canonical specs, the expensive ones too: their runs show once trained."""
    return list(dict.fromkeys(experiment.runs + experiment.expensive))


def _suite_filter(suite: suites.Suite, recipe: str, scale: float, specs: list[str]):
    import wandb_workspaces.workspaces as ws

    return ws.And(
        ws.Metric("JobType") == "train",  # not `bench perf`'s timing runs, nor report uploads
        ws.Config("dataset_name") == datasets.info(suite.dataset).name,
        ws.Config("recipe_name") == recipe,
        ws.Config("recipe_scale") == float(scale),
        ws.Config(SPEC_KEY).isin(list(dict.fromkeys(specs))),
    )


def _set_filters(target, condition) -> None:
    """Give a workspace or a report run set `condition` as its filters, verbatim.

    wandb_workspaces keeps filters as a display string and parses it back when serializing, which rewrites
    every `=` inside a value as `==` (`resnet32(shortcut=B)` would become `resnet32(shortcut==B)` and match no
    run). It replays a stashed filter when the string is unchanged, as for a view loaded from W&B: the filter
    built from the expression objects is stashed that way."""
    from wandb_workspaces import expr

    settings = target.runset_settings if hasattr(target, "runset_settings") else target
    settings.filters = condition
    target._stashed_filters_v2 = expr.filters_tree_to_v2(condition.to_model())
    target._stashed_filter_string = settings.filters


def _varying_axes(specs: list[str]) -> list[str]:
    """The variant axes whose values differ between `specs` (all of them when only one spec), in the order
    `variants.Spec` declares them; lists compared as the strings tracking.wandb_config logs."""
    from .train import _variant_axes

    values = [tracking.wandb_config({"variant": _variant_axes(variants.parse(spec))}) for spec in specs]
    keys = list(dict.fromkeys(key for row in values for key in row if key.startswith(tracking.VARIANT_PREFIX)))
    varying = [key for key in keys if len({repr(row.get(key)) for row in values}) > 1]
    return [key[len(tracking.VARIANT_PREFIX):] for key in (varying or keys)]


def _panels(wr, axes: list[str], report: bool) -> list:
    """The five charts of an experiment, fresh objects each call (a panel belongs to one section or grid). In a
    report grid they get explicit places (24 columns); a workspace section flows them."""
    spec = wr.Config(SPEC_KEY)
    curves = [
        wr.LinePlot(title=title, x=tracking.STEP_METRIC, y=[metric], groupby=spec, groupby_aggfunc="mean",
                    groupby_rangefunc="stddev", title_x="iteration", title_y=axis_title)
        for title, metric, axis_title in ((TEST_CURVE, "test/error", "test error (%)"),
                                          (TRAIN_CURVE, "train/error", "train error (%)"))
    ]
    bars = wr.BarPlot(title=FINAL_ERROR_BARS, metrics=[tracking.FINAL_TEST_ERROR], groupby=spec,
                      groupby_aggfunc="mean", groupby_rangefunc="stddev", title_y="final test error (%)")
    scatter = wr.ScatterPlot(title=COST_SCATTER, x=wr.SummaryMetric("macs"),
                             y=wr.SummaryMetric(tracking.FINAL_TEST_ERROR), log_x=True)
    parallel = wr.ParallelCoordinatesPlot(title=AXES_PARALLEL, columns=[
        *[wr.ParallelCoordinatesPlotColumn(metric=wr.Config(tracking.VARIANT_PREFIX + axis), display_name=axis)
          for axis in axes],
        wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(tracking.FINAL_TEST_ERROR),
                                         display_name="final test error (%)"),
    ])
    panels = [*curves, bars, scatter, parallel]
    if report:
        places = ((0, 0, 12, 8), (12, 0, 12, 8), (0, 8, 12, 8), (12, 8, 12, 8), (0, 16, 24, 8))
        for panel, (x, y, w, h) in zip(panels, places):
            panel.layout = wr.Layout(x=x, y=y, w=w, h=h)
    return panels


def _introduction(suite: suites.Suite, recipe: str, scale: float) -> str:
    return (f"Training runs of suite {suite.name} on {suite.dataset}, recipe {recipe} x{scale:g}, grouped by "
            f"spec: curves and bars are the mean over seeds, bands and whiskers one standard deviation. Runs are "
            f"selected by their W&B config (dataset_name, recipe_name, recipe_scale, spec) and job type train.")


def _page_text(path: Path, suite: suites.Suite, recipe: str, scale: float) -> str | None:
    """A Markdown page of `bench report` as report text: without its title (the heading above says it), its
    figures named instead of shown (they are PNGs on disk; the report run of `bench report` holds them as
    `figures/<name>`), and its CSV links dropped (relative paths mean nothing in W&B)."""
    if not path.is_file():
        return None
    lines = path.read_text().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    kept, captions = [], set()
    for line in lines:
        figure = re.fullmatch(r"!\[(.*)\]\((.*)\)", line.strip())
        if figure:
            caption, name = figure.group(1), Path(figure.group(2)).stem
            captions.add(f"_{caption}._")  # the caption line report/__init__.py writes under each figure
            kept.append(f"_Figure `figures/{name}` of the W&B report run `report {suite.name} {recipe} "
                        f"x{scale:g}`: {caption}._")
        elif line.strip() not in captions and not line.startswith("CSV: ["):
            kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip() or None


def _no_page_yet(suite: suites.Suite, recipe: str, scale: float) -> str:
    return (f"No Markdown page for this experiment yet: run `python -m bench report {suite.name} --recipe {recipe} "
            f"--scale {scale:g}`, then `python -m bench dashboard` again, to include its tables here.")


def _reachable_server(written: str) -> str:
    """The W&B server's URL (WANDB_BASE_URL, `wandb login --host`, or wandb's default), once it has answered an
    HTTP request (any status) within REACHABILITY_TIMEOUT_S."""
    import requests
    import wandb

    # The environment first: wandb.setup() keeps the settings of the first call in a process.
    base_url = (os.environ.get("WANDB_BASE_URL") or wandb.setup().settings.base_url).rstrip("/")
    try:
        requests.head(base_url, timeout=REACHABILITY_TIMEOUT_S, allow_redirects=False)
    except requests.RequestException as error:
        raise UserError(f"--publish needs network: the W&B server {base_url} cannot be reached "
                        f"({type(error).__name__}); {written}") from None
    return base_url
