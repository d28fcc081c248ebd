"""W&B dashboards of a suite (bench/dashboard.py) and the tracking they rely on (bench/tracking.py): the
definitions of the packaged cifar10 suite hold every panel of every experiment; every key they reference is one
a real training run logs to W&B (read back from its offline run file); publishing without a key or a network
fails in one line, quickly."""

import argparse
import json
import struct
import time

import pandas as pd
import pytest
import torch

import variants
from bench import dashboard, report, train, tracking
from bench import suite as suites
from bench.cli import build_parser
from bench.data import Source
from bench.errors import UserError
from bench.report.pages import Page, Table
from bench.runs import Request
from conftest import write_cifar10

TINY_NET = "cifar(depth=8)"
SMOKE_SCALE = 0.25  # the smoke recipe at 10 iterations: every kind of row (test evaluations, the final one) in seconds
PANEL_TYPES = ["Run History Line Plot", "Run History Line Plot", "Bar Chart", "Scatter Plot",
               "Parallel Coordinates Plot"]


# ---- reading what W&B recorded -----------------------------------------------------------------------------------

def wandb_records(path):
    """The records of a .wandb file, as wandb's own protobuf messages. The file is W&B's LevelDB-style log
    (wandb 0.31 has no Python reader left): a 7-byte header (":W&B", magic 0xBEE1, version), then 32 KiB
    blocks of chunks, each a 7-byte header (checksum, length, type: full, first, middle, last) and its bytes."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert struct.unpack("<4sHB", data[:7]) == (b":W&B", 0xBEE1, 0)
    block, position, pending = 32768, 7, b""
    while position + 7 <= len(data):
        left_in_block = block - position % block
        if left_in_block < 7:  # too small for a chunk header: padding
            position += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if kind == 0:  # zeros to the end of the block
            position += left_in_block
            continue
        chunk = data[position + 7:position + 7 + length]
        position += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def logged(path) -> dict:
    """What a run's .wandb file says W&B got: config (values), summary and history keys, metric definitions,
    job type. Nested summary values (test/error's {"min", "last"}) are listed under their top-level key."""
    found = {"config": {}, "summary": set(), "history": set(), "metrics": {}, "job_type": None}

    def top_key(item):
        return item.key or item.nested_key[0]

    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind in ("run", "config"):
            config = record.run.config if kind == "run" else record.config
            found["config"].update({top_key(item): json.loads(item.value_json) for item in config.update})
            if kind == "run":
                found["job_type"] = record.run.job_type
        elif kind == "summary":
            found["summary"].update(top_key(item) for item in record.summary.update)
        elif kind == "history":
            found["history"].update(top_key(item) for item in record.history.item)
        elif kind == "metric":
            found["metrics"][record.metric.name or record.metric.glob_name] = record.metric
    return found


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    """A real training run (the runner, tiny CIFAR-10 in the real layout, the smoke recipe) mirrored to W&B
    offline, and what its run file holds."""
    import wandb

    root = tmp_path_factory.mktemp("dashboard")
    write_cifar10(root / "data")
    outcome = train.run(Request(TINY_NET, "cifar10", "smoke", SMOKE_SCALE), Source(root / "data", download=False),
                        root / "results", train.Execution(torch.device("cpu")), wandb_mode="offline", quiet=True)
    assert outcome.status == "finished"
    wandb.teardown()  # as at the end of a training process: the service flushes the run file
    files = list((root / "results" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    return outcome, logged(files[0])


# ---- the definitions ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The packaged cifar10 suite's definitions as `dashboard.write` leaves them, beside one Markdown page that
    the report module itself wrote (a table and a figure), as `bench report` would have."""
    results = tmp_path_factory.mktemp("results")
    suite = suites.load("cifar10")
    pages = results / "reports" / "cifar10" / "paper-x1"
    pages.mkdir(parents=True)
    cells = pd.DataFrame({"spec": ["`resnet32`"], "test error % (ours)": ["7.51"]})
    page = Page("shortcuts", suite.experiments["shortcuts"].title, notes=["Options (§3.3): A zero-pads."],
                tables=[Table("shortcuts", "Shortcut options on CIFAR-10", data=cells, shown=cells)],
                figures=[("Shortcut options against error", pages / "shortcuts_bars.png")])
    report._write_page(page, ["Produced from 8 planned runs of suite `cifar10`."], pages)
    paths = dashboard.write("cifar10", results_dir=results)
    assert paths == {"workspace": pages / "wandb" / "workspace.json", "report": pages / "wandb" / "report.json"}
    return suite, {name: json.loads(path.read_text()) for name, path in paths.items()}


def panels_of(container) -> list[dict]:
    return container["panels"] if "panels" in container else container["metadata"]["panelBankSectionConfig"]["panels"]


def check_experiment_panels(panels: list[dict], experiment):
    assert [panel["viewType"] for panel in panels] == PANEL_TYPES, experiment.key
    test_curve, train_curve, bars, scatter, parallel = [panel["config"] for panel in panels]
    for curve, metric, title in ((test_curve, "test/error", dashboard.TEST_CURVE),
                                 (train_curve, "train/error", dashboard.TRAIN_CURVE)):
        assert curve["chartTitle"] == title and curve["metrics"] == [metric] and curve["xAxis"] == "iteration"
        assert (curve["groupBy"], curve["groupAgg"], curve["groupArea"]) == ("spec.value", "mean", "stddev")
    assert bars["chartTitle"] == dashboard.FINAL_ERROR_BARS and bars["metrics"] == ["test_error_final"]
    assert (bars["groupBy"], bars["groupAgg"], bars["groupArea"]) == ("spec.value", "mean", "stddev")
    assert scatter["chartTitle"] == dashboard.COST_SCATTER
    assert (scatter["xAxis"], scatter["yAxis"]) == ("summary:macs", "summary:test_error_final")
    assert parallel["chartTitle"] == dashboard.AXES_PARALLEL
    columns = [column["accessor"] for column in parallel["columns"]]
    assert columns[-1] == "summary:test_error_final" and len(columns) >= 2
    assert all(column.startswith("config:variant_") and column.endswith(".value") for column in columns[:-1])


def filter_items(runset: dict) -> dict:
    return {(item["key"]["section"], item["key"]["name"]): (item["op"], item["value"])
            for item in runset["filters"]["filters"]}


def test_workspace_has_a_section_of_every_panel_per_experiment(written):
    suite, definitions = written
    workspace = definitions["workspace"]
    assert (workspace["entity"], workspace["project"]) == (dashboard.PLACEHOLDER_ENTITY, tracking.PROJECT)
    sections = workspace["spec"]["section"]["panelBankConfig"]["sections"]
    assert [section["name"] for section in sections] == [e.title for e in suite.experiments.values()]
    for section, experiment in zip(sections, suite.experiments.values()):
        if experiment.runs:
            check_experiment_panels(panels_of(section), experiment)
            assert section["localPanelSettings"]["xAxis"] == "iteration"
        else:  # the bottleneck comparison trains nothing: a note, no empty charts
            assert [panel["viewType"] for panel in panels_of(section)] == ["Markdown Panel"]
    runset = workspace["spec"]["section"]["runSets"][0]
    filters = filter_items(runset)
    assert filters[("run", "jobType")] == ("=", "train")
    assert filters[("config", "dataset_name")] == ("=", "cifar10")
    assert filters[("config", "recipe_name")] == ("=", "paper")
    assert filters[("config", "recipe_scale")] == ("=", 1.0)
    every_spec = {spec for e in suite.experiments.values() for spec in e.runs + e.expensive}
    assert filters[("config", "spec")][0] == "IN" and set(filters[("config", "spec")][1]) == every_spec
    assert runset["grouping"] == [{"section": "config", "name": "spec.value"}]


def test_report_mirrors_the_pages_with_the_same_panels_per_experiment(written):
    suite, definitions = written
    blocks = definitions["report"]["spec"]["blocks"]
    headings = [i for i, block in enumerate(blocks) if block["type"] == "heading"]
    assert [blocks[i]["children"][0]["text"] for i in headings] == [e.title for e in suite.experiments.values()]
    for start, end, experiment in zip(headings, headings[1:] + [len(blocks)], suite.experiments.values()):
        part = blocks[start + 1:end]
        text, grids = part[0], [block for block in part if block["type"] == "panel-grid"]
        if experiment.key == "shortcuts":  # the page bench report wrote: its text and table, figure named
            assert text["type"] == "markdown-block" and "| `resnet32` | 7.51 |" in text["content"]
            assert "Produced from 8 planned runs" in text["content"] and "A zero-pads" in text["content"]
            assert "figures/shortcuts_bars" in text["content"] and "](" not in text["content"]
        else:  # no page yet: how to make one
            assert text["type"] == "paragraph" and "python -m bench report cifar10" in text["children"][0]["text"]
        if not experiment.runs:
            assert grids == []
            continue
        assert len(grids) == 1
        check_experiment_panels(panels_of(grids[0]), experiment)
        (runset,) = grids[0]["metadata"]["runSets"]
        filters = filter_items(runset)
        # verbatim: the library's string round trip would have made resnet32(shortcut=B) resnet32(shortcut==B)
        assert filters[("config", "spec")] == ("IN", list(dict.fromkeys(experiment.runs + experiment.expensive)))
        assert filters[("config", "recipe_name")] == ("=", "paper")
        assert runset["grouping"] == [{"section": "config", "name": "spec.value"}]


def referenced_keys(definition) -> dict[str, set]:
    """Every run key a definition names, by where W&B keeps it: panels' axes, metrics, columns and groupings,
    run sets' filters and groupings (config keys without the `.value` W&B wraps them in)."""
    keys = {"config": set(), "summary": set(), "history": set(), "run": set()}

    def accessor(text):
        section, name = text.split(":", 1)
        keys[section].add(name.removesuffix(".value"))

    def visit(node):
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        config = node.get("config") or {}
        view = node.get("viewType")
        if view == "Run History Line Plot":
            keys["history"].update([config["xAxis"], *config["metrics"]])
        elif view == "Bar Chart":  # bars show each run's summary value of the metric
            keys["summary"].update(config["metrics"])
        elif view == "Scatter Plot":
            accessor(config["xAxis"])
            accessor(config["yAxis"])
        elif view == "Parallel Coordinates Plot":
            for column in config["columns"]:
                accessor(column["accessor"])
        if config.get("groupBy"):
            keys["config"].add(config["groupBy"].removesuffix(".value"))
        if node.get("localPanelSettings", {}).get("xAxis", "_step") != "_step":  # a section's x-axis
            keys["history"].add(node["localPanelSettings"]["xAxis"])
        if node.get("filterFormat") == "filterV2":
            for item in node["filters"]:
                keys[item["key"]["section"]].add(item["key"]["name"])
        for group in node.get("grouping", []):
            keys[group["section"]].add(group["name"].removesuffix(".value"))
        for value in node.values():
            visit(value)

    visit(definition)
    return keys


def test_every_key_the_definitions_reference_is_one_a_training_run_logs(written, offline_run):
    _, definitions = written
    outcome, recorded = offline_run
    for name, definition in definitions.items():
        keys = referenced_keys(definition)
        assert keys["history"] >= {"iteration", "test/error", "train/error"}, name
        assert keys["summary"] >= {"test_error_final", "macs"} and "spec" in keys["config"], name
        assert keys["config"] <= set(recorded["config"]), (name, keys["config"] - set(recorded["config"]))
        assert keys["summary"] <= recorded["summary"], (name, keys["summary"] - recorded["summary"])
        assert keys["history"] <= recorded["history"], (name, keys["history"] - recorded["history"])
        assert keys["run"] == {"jobType"}, name

    # The filters' values are in the form the runner logs them: built for the smoke run's recipe and scale,
    # every filter but the spec list lets it through, and the spec list holds canonical specs as `spec` does.
    smoke = dashboard.definitions(dashboard.build("cifar10", recipe="smoke", scale=SMOKE_SCALE))
    runset = smoke["workspace"]["spec"]["section"]["runSets"][0]
    for (section, key), (op, value) in filter_items(runset).items():
        if key == "spec":
            assert op == "IN" and all(variants.canonical(spec) == spec for spec in value)
            assert recorded["config"]["spec"] == variants.canonical(TINY_NET) == outcome.summary["spec"]
        elif section == "run":
            assert (key, op, value) == ("jobType", "=", recorded["job_type"])
        else:
            assert op == "=" and recorded["config"][key] == value, key


def test_training_runs_log_against_iteration_with_flat_config_and_error_summaries(offline_run):
    outcome, recorded = offline_run
    assert recorded["job_type"] == "train"
    metrics = recorded["metrics"]
    assert "iteration" in metrics
    for pattern in ("train/*", "test/*", "val/*", "throughput/*"):
        assert metrics[pattern].step_metric == "iteration", pattern
    assert metrics["test/error"].step_metric == "iteration"
    assert metrics["test/error"].summary.min and metrics["test/error"].summary.last

    config = recorded["config"]
    assert set(tracking.FLAT_CONFIG_KEYS) <= set(config)
    assert (config["dataset_name"], config["recipe_name"], config["recipe_scale"], config["seed"]) == \
        ("cifar10", "smoke", SMOKE_SCALE, 0)
    assert config["variant_depth"] == 8 and config["variant_layers"] == "1-1-1" and config["variant_shortcut"] == "A"
    assert config["variant"]["layers"] == [1, 1, 1]  # the nested dict, as in config.json, is still there
    variant = json.loads(outcome.record.config_path.read_text())["variant"]
    assert {key for key in config if key.startswith("variant_")} == {f"variant_{axis}" for axis in variant}

    rows = outcome.record.metrics()
    errors = [row["test/error"] for row in rows if "test/error" in row]
    assert len(errors) >= 3  # intermediate evaluations and the final one
    assert tracking.wandb_summary(outcome.summary, rows)["test_error_min"] == min(errors)
    assert tracking.wandb_summary(outcome.summary, rows)["test_error_final"] == outcome.summary["test_error"]
    assert {"test_error_final", "test_error_min", "test/error", "macs"} <= recorded["summary"]


def test_unfinished_runs_have_a_minimum_but_no_final_error():
    rows = [{"iteration": 10, "test/error": 60.0}, {"iteration": 20, "test/error": 55.0}, {"iteration": 25}]
    summary = tracking.wandb_summary({"status": "interrupted"}, rows)
    assert summary["test_error_min"] == 55.0 and "test_error_final" not in summary


def test_perf_runs_have_their_own_job_type(tmp_path):
    import wandb

    tracker = tracking.Tracker("offline", "perf-job-type", name="perf", config={}, group="perf", tags=[],
                               directory=tmp_path, job_type="perf")
    tracker.log({"iteration": 1, "train/loss": 1.0}, step=1)
    tracker.finish({"status": "finished"}, failed=False)
    wandb.teardown()
    (path,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    assert logged(path)["job_type"] == "perf"


# ---- the command -------------------------------------------------------------------------------------------------

def command(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_command_writes_the_definitions_and_says_how_to_publish(tmp_path, capsys):
    args = command(["dashboard", "cifar10", "--recipe", "smoke", "--scale", "0.5", "--results-dir", str(tmp_path)])
    assert args.run(args) == 0
    folder = tmp_path / "reports" / "cifar10" / "smoke-x0.5" / "wandb"
    assert json.loads((folder / "workspace.json").read_text())["entity"] == dashboard.PLACEHOLDER_ENTITY
    assert json.loads((folder / "report.json").read_text())["project"]["name"] == tracking.PROJECT
    out = capsys.readouterr().out
    assert str(folder / "workspace.json") in out and str(folder / "report.json") in out and "--publish" in out


@pytest.fixture
def no_wandb_login(tmp_path, monkeypatch):
    """No API key anywhere: no WANDB_API_KEY, and a home without a netrc."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()


@pytest.mark.parametrize("host", ["api.wandb.ai", "api.forge.coreweave.com"])
def test_a_wandb_login_counts_as_an_api_key(tmp_path, no_wandb_login, host):
    assert not tracking.api_key_configured() and tracking.default_mode() == "offline"
    netrc = tmp_path / "home" / ".netrc"  # as `wandb login` leaves it (wandb 0.31 logs in to Forge by default)
    netrc.write_text(f"machine {host}\n  login user\n  password {'k' * 40}\n")
    netrc.chmod(0o600)
    assert tracking.api_key_configured() and tracking.default_mode() == "online"


def test_publish_without_an_api_key_fails_in_one_line_before_any_network(tmp_path, no_wandb_login, monkeypatch):
    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("publishing without a key must not touch the network")

    monkeypatch.setattr(requests, "head", no_network)
    args = command(["dashboard", "cifar10", "--results-dir", str(tmp_path / "results"), "--publish"])
    with pytest.raises(UserError) as caught:
        args.run(args)
    message = str(caught.value)
    folder = tmp_path / "results" / "reports" / "cifar10" / "paper-x1" / "wandb"
    assert message == (f"--publish needs a W&B API key (wandb login or WANDB_API_KEY) and network; the definitions "
                       f"are written to {folder}")
    assert (folder / "workspace.json").is_file() and (folder / "report.json").is_file()


def test_publish_without_network_fails_in_one_line_quickly(tmp_path, no_wandb_login, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: nothing listens there
    args = command(["dashboard", "cifar10", "--results-dir", str(tmp_path), "--entity", "someone", "--publish"])
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        args.run(args)
    assert time.monotonic() - started < dashboard.REACHABILITY_TIMEOUT_S + 5
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("--publish needs network: the W&B server http://127.0.0.1:9 cannot be reached")
    assert message.endswith(f"the definitions are written to {tmp_path / 'reports' / 'cifar10' / 'paper-x1' / 'wandb'}")


def test_the_identity_suites_sections_compare_its_shortcut_designs_and_units_by_their_axes(tmp_path):
    paths = dashboard.write("identity", results_dir=tmp_path)
    workspace = json.loads(paths["workspace"].read_text())
    sections = workspace["spec"]["section"]["panelBankConfig"]["sections"]
    suite = suites.load("identity")
    assert [section["name"] for section in sections] == [e.title for e in suite.experiments.values()]
    filters = filter_items(workspace["spec"]["section"]["runSets"][0])
    assert filters[("config", "recipe_name")] == ("=", "identity")

    def parallel_columns(section):
        parallel = next(panel for panel in panels_of(section)
                        if panel.get("config", {}).get("chartTitle") == dashboard.AXES_PARALLEL)
        return [column["accessor"] for column in parallel["config"]["columns"]]

    designs, units, _ = sections
    assert parallel_columns(designs)[:-1] == ["config:variant_shortcut.value", "config:variant_gate_bias.value",
                                              "config:variant_plain.value"]
    assert "config:variant_unit.value" in parallel_columns(units)
