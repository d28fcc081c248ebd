"""The project as an installed package: a wheel built from the sources holds every subpackage and the data
files read at run time (suite files, published reference figures), and `python -m bench` works from a
fresh venv with that wheel installed, outside the checkout.

The wheel is built offline (no build isolation, no index) with the setuptools of the running environment
(the dev extra). The fresh venv sees the project's dependencies (torch, ...) through a .pth line naming the
running environment's site-packages: a path line of a .pth is appended to sys.path, but the .pth files in
that folder are not processed, so the editable install of the checkout stays out of the fresh venv.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pandas as pd
import pytest

import bench
from bench import suite as suites
from bench.records import RunRecord

REPO = Path(bench.__file__).resolve().parents[1]
BUILD_INPUTS = ("pyproject.toml", "README.md", "bench", "variants")
# spec -> final test error of the synthetic records (seed 0); the suite's other runs stay missing.
OUTCOMES = {"resnet20": 9.25, "plain20": 11.5, "resnet56": 7.75, "plain56": 14.0}


def run(command, cwd, timeout=300):
    """A command of the fresh venv, from outside the checkout, without the caller's PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(work dir, wheel, python of a fresh venv with only the wheel installed)."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "src"
    source.mkdir()
    for name in BUILD_INPUTS:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    dist = work / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "-w", dist, source], cwd=work)
    (wheel,) = dist.glob("resnet_bench-*.whl")

    fresh = work / "fresh"
    venv.EnvBuilder(with_pip=False).create(fresh)
    python = fresh / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel],
        cwd=work)
    fresh_site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          cwd=work).stdout.strip())
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (fresh_site / "dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    return work, wheel, python


@pytest.mark.slow
def test_wheel_holds_subpackages_and_data(installed):
    _, wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("bench/__init__.py", "bench/report/__init__.py", "bench/report/pages.py", "variants/__init__.py",
                 "bench/suites/cifar10.toml", "bench/reference/cifar10_depth.csv",
                 "bench/reference/fig5_block_cost.csv", "bench/data/resized_crops.cpp"):
        assert name in names
    tops = {name.split("/")[0] for name in names}
    assert tops == {"bench", "variants", next(top for top in tops if top.endswith(".dist-info"))}, tops


@pytest.mark.slow
def test_fresh_venv_imports_the_wheel_not_the_checkout(installed):
    work, _, python = installed
    probe = ("import json, sys, importlib.metadata, bench, bench.report, variants\n"
             "print(json.dumps({'bench': bench.__file__, 'variants': variants.__file__,\n"
             "  'report': bench.report.__file__, 'prefix': sys.prefix,\n"
             "  'dist': str(importlib.metadata.distribution('resnet-bench').locate_file('')),\n"
             "  'finders': [type(f).__module__ for f in sys.meta_path]}))")
    found = json.loads(run([python, "-c", probe], cwd=work).stdout)
    fresh = Path(found["prefix"]).resolve()
    assert fresh == (work / "fresh").resolve()
    for key in ("bench", "variants", "report", "dist"):
        assert Path(found[key]).resolve().is_relative_to(fresh), (key, found[key])
    assert not any("editable" in module for module in found["finders"]), found["finders"]


@pytest.mark.slow
def test_list_and_measure(installed):
    work, _, python = installed
    listed = run([python, "-m", "bench", "list", "resnet5*"], cwd=work).stdout
    names = {line.split()[0] for line in listed.splitlines() if line.strip()}
    assert {"resnet50", "resnet50b", "resnet50c", "resnet50d"} <= names, listed
    measured = json.loads(run([python, "-m", "bench", "measure", "resnet20", "--json"], cwd=work).stdout)
    assert measured["params"] == 269722


@pytest.mark.slow
def test_report_from_wheel_uses_packaged_reference(installed):
    work, _, python = installed
    results = work / "results"
    planned = suites.expand(suites.load("cifar10"), "paper", 0.05, 1)
    for planned_run in planned:
        if planned_run.spec not in OUTCOMES:
            continue
        record = RunRecord(results, planned_run.run_id)
        record.write_config({"spec": planned_run.spec,
                             "recipe": {"name": "paper", "scale": 0.05, "iterations": 3200},
                             "execution": {"device_name": "Test CPU", "precision": "bf16"}})
        for iteration in (1600, 3200):
            record.append_metrics({"iteration": iteration, "train/error": 30.0 - iteration / 400,
                                   "test/error": 40.0 - iteration / 400})
        record.write_summary({"status": "finished", "test_error": OUTCOMES[planned_run.spec],
                              "train_img_s": 1000.0, "updated_at": "2026-11-21T10:00:00+00:00"})
    assert len(list((results / "runs").iterdir())) == len(OUTCOMES)

    run([python, "-m", "bench", "report", "cifar10", "--results-dir", results, "--recipe", "paper",
         "--scale", "0.05", "--wandb", "disabled"], cwd=work)
    out = results / "reports" / "cifar10" / "paper-x0.05"
    assert (out / "index.md").is_file() and (out / "depth.md").is_file()
    table = pd.read_csv(out / "table6_depth.csv").set_index("depth")
    assert table.loc[20, "resnet_error_mean"] == 9.25 and table.loc[20, "plain_error_mean"] == 11.5
    assert table.loc[20, "paper_error"] == 8.75  # from bench/reference/cifar10_depth.csv in the wheel
    assert table.loc[56, "resnet_error_mean"] == 7.75 and table.loc[56, "paper_error"] == 6.97
    assert "bench/reference/fig5_block_cost.csv" in (out / "bottleneck.md").read_text()
