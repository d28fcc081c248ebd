"""Suite files: parsing, expansion into runs, clear errors, and the scheduler on tiny data."""

import subprocess
import sys

import pytest

from bench import launch
from bench import suite as suites
from bench.cli import main
from bench.records import RunRecord
from bench.suite import SuiteError


def write(tmp_path, text, name="mine.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_cifar10_suite_expands_into_the_expected_runs():
    suite = suites.load("cifar10")
    assert list(suite.experiments) == ["depth", "shortcuts", "tweaks", "stems", "wide", "bottleneck"]
    planned = suites.expand(suite, "paper", 0.05, seeds=1)
    specs = [run.spec for run in planned]
    assert specs == [
        "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
        "plain20", "plain32", "plain44", "plain56", "plain110",
        "resnet32(shortcut=B)", "resnet32(shortcut=C)", "resnet56(shortcut=B)", "resnet56(shortcut=C)",
        "resnet50", "resnet50b", "resnet50c", "resnet50d", "resnet18", "resnet18c",
        "resnet164(unit=preact)", "wrn16_8",
    ]
    shared = {run.spec: run.experiments for run in planned}
    assert shared["resnet32"] == ("depth", "shortcuts") and shared["resnet50c"] == ("tweaks", "stems")
    assert shared["resnet110"] == ("depth", "wide")
    assert len({run.run_id for run in planned}) == 22

    two_seeds = suites.expand(suite, "paper", 0.05, seeds=2, only=["tweaks"])
    assert [(run.spec, run.seed) for run in two_seeds] == [(s, seed) for seed in (0, 1) for s in
                                                          ("resnet50", "resnet50b", "resnet50c", "resnet50d")]
    assert [run.spec for run in suites.expand(suite, only=["depth"], expensive=True)][-1] == "resnet1202"
    assert [run.spec for run in suites.expand(suite, only=["wide"], expensive=True)][-1] == "wrn28_10"
    assert suites.expand(suite, only=["bottleneck"]) == []


def test_the_identity_suite_plans_identity_mappings_tables_1_to_3_at_its_own_recipe():
    suite = suites.load("identity")
    assert (suite.dataset, suite.recipe) == ("cifar10", "identity")
    assert [(key, experiment.report) for key, experiment in suite.experiments.items()] == [
        ("shortcut_designs", "shortcut_designs"), ("units", "units"), ("preact", "units")]
    planned = suites.expand(suite)
    assert len(planned) == 19  # Table 1's 10 designs, Table 2's 4 other units at 110 and 5 at 164; Table 3 shares them
    assert {run.run.recipe.name for run in planned} == {"identity"}
    shared = {run.spec: run.experiments for run in planned}
    assert shared["resnet110"] == ("shortcut_designs", "units", "preact")
    assert shared["resnet164(unit=preact)"] == ("units", "preact")
    every = [run.spec for run in suites.expand(suite, expensive=True)]
    assert every[-2:] == ["resnet1001", "resnet1001(unit=preact)"] and len(every) == 21


@pytest.mark.parametrize("name", ["imagenette", "imagenet"])
def test_the_imagenet_suites_plan_resnext_table3s_settings(name):
    planned = suites.expand(suites.load(name), only=["cardinality"])
    assert [run.spec for run in planned] == [
        "resnet50b", "resnet50b(groups=2,base_width=40)", "resnet50b(groups=4,base_width=24)",
        "resnet50b(groups=8,base_width=14)", "resnext50_32x4d"]


@pytest.mark.parametrize(
    "text, message",
    [
        ('name = "x"\ndataset = "cifar10"\n[experiments.a]\ntitle = "t"\nreport = "depth"\nruns = ["resnet20" "a"]\n',
         "(at line 6, column 20)"),
        ('name = "x"\ndataset = "cifar10"\ncolour = 1\n', "colour: unknown key; allowed: dataset, experiments, name"),
        ('name = "x"\ndataset = "places365"\n', "dataset: 'places365' is not allowed; choose one of: cifar10, cifar100, imagenette"),
        ('name = "x"\ndataset = "cifar10"\n', "experiments: missing"),
        ('name = "x"\ndataset = "cifar10"\n[experiments.a]\ntitle = "t"\nreport = "depth"\nruns = ["resnet20", "resnet21"]\n',
         "experiments.a.runs[1]: unknown variant 'resnet21'"),
        ('name = "x"\ndataset = "cifar10"\n[experiments.a]\ntitle = "t"\nreport = "table9"\nruns = []\n',
         "experiments.a.report: 'table9' is not allowed; choose one of: depth, shortcuts, tweaks, stems, bottleneck"),
        ('name = "x"\ndataset = "cifar10"\n[experiments.a]\ntitle = "t"\nreport = "depth"\n', "experiments.a.runs: missing"),
        ('name = "x"\ndataset = "cifar10"\n[experiments.a]\ntitle = "t"\nreport = "depth"\nruns = []\nseeds = 3\n',
         "experiments.a.seeds: unknown key"),
    ],
)
def test_bad_suite_files_name_the_key_or_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as error:
        suites.load(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_unknown_suite_and_experiment(capsys):
    with pytest.raises(SuiteError, match="unknown suite 'cifar11'; choose one of: cifar10"):
        suites.load("cifar11")
    with pytest.raises(SuiteError, match="unknown experiment 'deep' in --only; choose from: depth, shortcuts"):
        suites.expand(suites.load("cifar10"), only=["deep"])
    assert main(["suite", "cifar10", "--only", "deep"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown experiment 'deep'")


TINY_SUITE = """
name = "tiny"
dataset = "cifar10"

[experiments.depth]
title = "Depth"
report = "depth"
runs = ["cifar(depth=8)", "cifar(depth=8,shortcut=none)", "cifar(depth=14)"]
"""


@pytest.mark.slow
def test_suite_runs_what_is_missing_goes_on_after_a_failure_and_then_does_nothing(tmp_path, tiny_cifar10,
                                                                                  monkeypatch, capsys):
    root, _ = tiny_cifar10
    path = write(tmp_path, TINY_SUITE)
    real_popen = subprocess.Popen

    def popen(command, **kwargs):  # the depth-14 child crashes at once, as a broken run would
        if "cifar(depth=14)" in command:
            command = [sys.executable, "-c", "raise SystemExit(1)"]
        return real_popen(command, **kwargs)

    monkeypatch.setattr(launch.subprocess, "Popen", popen)
    monkeypatch.setattr(suites, "PROGRESS_EVERY", 0.0)  # a progress line on every poll
    argv = ["suite", str(path), "--recipe", "smoke", "--data-dir", str(root), "--results-dir", str(tmp_path / "r"),
            "--wandb", "disabled", "--device", "cpu"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    out = captured.out
    assert "suite tiny: 3 runs, 0 already done, 3 to train" in out
    assert captured.err == ""
    assert "[0/3] start cifar(depth=8) seed 0 on cpu (depth)" in out
    assert "[1/3] finished cifar(depth=8) seed 0 in " in out and "ETA " in out
    assert "    cifar(depth=8) seed 0: " in out  # progress of the run in flight (starting, then iterations)
    assert "2 trained, 0 already done, 0 diverged (a result, not a failure), 1 failed" in out
    assert "failed: cifar(depth=14) seed 0" in out
    planned = suites.expand(suites.load(path), "smoke", 1.0)
    statuses = [RunRecord(tmp_path / "r", run.run_id).status() for run in planned]
    assert statuses == ["finished", "finished", "failed"]  # the child died silently: the suite recorded it
    assert "exited with status 1 before recording anything" in RunRecord(tmp_path / "r", planned[2].run_id).summary()["reason"]
    assert (tmp_path / "r" / "reports" / "tiny" / "smoke-x1" / "depth.md").exists()

    monkeypatch.undo()
    finished = RunRecord(tmp_path / "r", planned[0].run_id).summary_path.stat().st_mtime_ns
    main(argv)  # the failed run is tried again; the finished ones are not
    out = capsys.readouterr().out
    assert "3 runs, 2 already done, 1 to train" in out
    assert RunRecord(tmp_path / "r", planned[0].run_id).summary_path.stat().st_mtime_ns == finished
    assert main(argv) == 0
    assert "3 runs, 3 already done, 0 to train" in capsys.readouterr().out


def test_missing_data_stops_the_suite_before_any_run(tmp_path, monkeypatch, capsys):
    import torchvision

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    path = write(tmp_path, TINY_SUITE)
    assert main(["suite", str(path), "--recipe", "smoke", "--data-dir", str(tmp_path / "none"), "--results-dir",
                 str(tmp_path / "r"), "--wandb", "disabled"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cifar10 not found: no folder {tmp_path / 'none' / 'cifar-10-batches-py'}")
    assert not (tmp_path / "r" / "runs").exists()


ARRAY_SUITE = """
name = "pair"
dataset = "cifar10"

[experiments.shortcut]
title = "Shortcut"
report = "depth"
runs = ["cifar(depth=8,shortcut=B)"]
"""


@pytest.mark.slow
def test_a_suite_trains_each_specs_seeds_as_one_array_with_the_records_of_runs_alone(tmp_path, tiny_cifar10,
                                                                                      capsys):
    """`--array 3` against `--array off` on a suite of 1 spec x 3 seeds: one child for the spec instead of one
    per run, the same run ids, every run finished, and the same test results to fp32's noise (an array rounds
    in other kernels: tests/test_arrays.py and results/perf/cpu/array-noise.md)."""
    root, _ = tiny_cifar10
    path = write(tmp_path, ARRAY_SUITE)
    results = {}
    for array in ("3", "off"):
        argv = ["suite", str(path), "--recipe", "smoke", "--seeds", "3", "--array", array, "--data-dir", str(root),
                "--results-dir", str(tmp_path / array), "--wandb", "disabled", "--device", "cpu"]
        assert main(argv) == 0
        results[array] = capsys.readouterr().out
    assert "suite pair: 3 runs, 0 already done, 3 to train" in results["3"]
    assert "as 1 training process (arrays of up to 3 seeds)" in results["3"]
    assert "start cifar(depth=8,shortcut=B) seeds 0, 1, 2 as one array on cpu (shortcut)" in results["3"]
    assert "as one array" not in results["off"] and "start cifar(depth=8,shortcut=B) seed 2 on cpu" in results["off"]
    planned = suites.expand(suites.load(path), "smoke", 1.0, seeds=3)
    assert len(planned) == 3
    for run in planned:
        array, alone = RunRecord(tmp_path / "3", run.run_id), RunRecord(tmp_path / "off", run.run_id)
        assert array.status() == alone.status() == "finished", run.run_id
        summary, solo = array.summary(), alone.summary()
        assert summary["iterations"] == solo["iterations"]
        assert summary["test_loss"] == pytest.approx(solo["test_loss"], rel=5e-2), run.run_id
        assert abs(summary["test_error"] - solo["test_error"]) <= 5.0, run.run_id  # 100 test images: 1 each
    for array in ("3", "off"):
        assert (tmp_path / array / "reports" / "pair" / "smoke-x1" / "shortcut.md").exists()
