"""Run ids and records over time: cadence fields are recorded but not hashed, records written by earlier code
keep their ids, provenance (commit and uncommitted diff) is stored beside each run, and record validation
does not rely on `assert`."""

import ast
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench import provenance, train
from bench import recipe as recipes
from bench import suite as suites
from bench.cli import main
from bench.data import Source
from bench.errors import UserError
from bench.records import RunRecord
from bench.report.runs import load_runs
from bench.runs import Request

ROOT = Path(__file__).resolve().parents[1]
LEGACY = Path(__file__).parent / "data" / "legacy_results"  # written by the code of commit 9cafb07
LEGACY_ID = "cifar-depth-8_cifar10_smoke-x1_seed0_29d38692"
TINY_NET = "cifar(depth=8)"


def smoke(results, data_root, wandb_mode="disabled", force=False, **request):
    return train.run(Request(TINY_NET, "cifar10", "smoke", **request), Source(data_root, download=False), results,
                     train.Execution(torch.device("cpu")), wandb_mode=wandb_mode, force=force, quiet=True)


# ---- run ids ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("request_, run_id", [
    # computed by the code before cadence fields left the hash (commit 9cafb07): the same ids now
    (("resnet20", "cifar10", "paper", 0.05, 0), "resnet20_cifar10_paper-x0.05_seed0_bb08c4a9"),
    (("resnet50d", "cifar10", "paper", 1.0, 2), "resnet50d_cifar10_paper-x1_seed2_d6219cac"),
    (("plain110", "cifar100", "paper", 0.01, 1), "plain110_cifar100_paper-x0.01_seed1_fc50b589"),
    (("resnet20(shortcut=B)", "cifar10", "smoke", 1.0, 0), "resnet20-shortcut-B_cifar10_smoke-x1_seed0_4a1e08d9"),
    ((TINY_NET, "cifar10", "smoke", 1.0, 0), LEGACY_ID),
])
def test_run_ids_of_earlier_records_are_unchanged(request_, run_id):
    assert Request(*request_).resolve().run_id == run_id


def test_checkpoint_interval_is_recorded_but_not_hashed():
    plan = Request("resnet20", "cifar10", "paper", 0.05, 0).resolve().plan(50_000)
    other = Request("resnet20", "cifar10", "paper", 0.05, 0, checkpoint_every=500).resolve()
    other_plan = other.plan(50_000)
    assert other_plan.cadence.checkpoint_every == 500 and plan.cadence.checkpoint_every == 100
    assert other.run_id == "resnet20_cifar10_paper-x0.05_seed0_bb08c4a9"
    assert other_plan.to_dict()["checkpoint_every"] == 500  # config.json records what was used


@pytest.mark.parametrize("change", [
    dict(scale=0.1), dict(seed=1), dict(val_size=5000), dict(normalize="channel"), dict(dataset="cifar100"),
    dict(recipe=replace(recipes.RECIPES["paper"], batch_size=256).scaled(0.05)),
    dict(recipe=replace(recipes.RECIPES["paper"], log_every=50).scaled(0.05)),
    dict(recipe=replace(recipes.RECIPES["paper"], eval_subset=1000).scaled(0.05)),
])
def test_fields_that_change_results_stay_hashed(change):
    request = dict(spec="resnet20", dataset="cifar10", recipe="paper", scale=0.05, seed=0) | change
    if isinstance(request["recipe"], recipes.Recipe):
        request["scale"] = 1.0
    assert Request(**request).resolve().run_id != "resnet20_cifar10_paper-x0.05_seed0_bb08c4a9"


def test_a_record_written_by_earlier_code_is_found_skipped_and_reported(tmp_path, tiny_cifar10, capsys):
    root, _ = tiny_cifar10
    results = tmp_path / "results"
    shutil.copytree(LEGACY, results)
    written = json.loads((results / "runs" / LEGACY_ID / "summary.json").read_text())

    outcome = smoke(results, root)
    assert outcome.skipped and outcome.run_id == LEGACY_ID and outcome.summary == written
    assert smoke(results, root, checkpoint_every=10).skipped  # another cadence: the same finished run
    assert main(["train", TINY_NET, "--recipe", "smoke", "--checkpoint-every", "10", "--data-dir", str(root),
                 "--results-dir", str(results), "--wandb", "disabled", "--device", "cpu"]) == 0
    assert f"run {LEGACY_ID} is already finished; nothing to do" in capsys.readouterr().out

    suite_file = tmp_path / "legacy.toml"
    suite_file.write_text('name = "legacy"\ndataset = "cifar10"\n[experiments.depth]\ntitle = "t"\nreport = "depth"\n'
                          f'runs = ["{TINY_NET}"]\n')
    runs = load_runs(results, suites.expand(suites.load(suite_file), "smoke", 1.0, 1))
    assert list(runs.run_id) == [LEGACY_ID] and list(runs.status) == ["finished"]
    assert runs.test_error[0] == written["test_error"]
    assert runs.code[0] == "9cafb07ab6"  # its git_commit, from before `source` was recorded


@pytest.mark.slow
def test_checkpoint_interval_sets_when_checkpoints_are_written(tmp_path, tiny_cifar10, monkeypatch):
    root, _ = tiny_cifar10
    saved = []
    real_save = RunRecord.save_checkpoint
    monkeypatch.setattr(RunRecord, "save_checkpoint", lambda self, state: (saved.append(state["iteration"]),
                                                                            real_save(self, state)))
    outcome = smoke(tmp_path, root, checkpoint_every=10)
    assert saved == [10, 20, 30]  # not at the end: a finished run keeps no checkpoint
    assert outcome.run_id == LEGACY_ID
    assert json.loads(outcome.record.config_path.read_text())["recipe"]["checkpoint_every"] == 10


# ---- errors without assert --------------------------------------------------------------------------------

def test_bad_checkpoint_interval_is_a_one_line_user_error(tmp_path, tiny_cifar10, capsys):
    root, _ = tiny_cifar10
    assert main(["train", TINY_NET, "--recipe", "smoke", "--checkpoint-every", "7", "--data-dir", str(root),
                 "--results-dir", str(tmp_path), "--wandb", "disabled"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: --checkpoint-every 7 is not allowed: it must be a positive multiple of the recipe's log "
                   "interval, log_every=5 (5, 10, 15, ...), so that checkpoints fall on log points\n")
    assert main(["suite", "cifar10", "--recipe", "smoke", "--checkpoint-every", "0", "--results-dir",
                 str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: --checkpoint-every 0 is not allowed")


def test_recipe_validation_raises_user_errors():
    with pytest.raises(UserError, match="the recipe has 0 iterations"):
        replace(recipes.RECIPES["smoke"], iterations=0)
    with pytest.raises(UserError, match="log_every=0 is not allowed"):
        replace(recipes.RECIPES["smoke"], log_every=0)


def test_no_assert_statements_in_the_package():
    """`python -O` strips asserts: input and record validation must not depend on them."""
    found = []
    for path in sorted((ROOT / "bench").rglob("*.py")) + sorted((ROOT / "variants").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        found += [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    assert found == []


@pytest.mark.slow
def test_record_validation_holds_under_python_O(tmp_path):
    code = ("import sys; from bench.records import RunRecord\n"
            "try:\n    RunRecord(sys.argv[1], 'r').write_summary({'status': 'done'})\n"
            "except ValueError as error:\n    print(error)\n")
    done = subprocess.run([sys.executable, "-O", "-c", code, str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.stdout.startswith("status 'done' is not a run status")
    assert not (tmp_path / "runs" / "r" / "summary.json").exists()


# ---- provenance -------------------------------------------------------------------------------------------

def git(directory, *args):
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=directory,
                   check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text("ignored/\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def test_source_of_a_clean_and_a_dirty_checkout(checkout):
    clean = provenance.source_of(checkout / "pkg")
    assert len(clean.commit) == 40 and not clean.dirty and clean.git_commit == clean.commit

    (checkout / "pkg" / "__init__.py").write_text("x = 2\n")
    (checkout / "pkg" / "new_module.py").write_text("y = 3\n")
    (checkout / "big.bin").write_bytes(b"\0" * (provenance.MAX_UNTRACKED_BYTES + 1))
    (checkout / "ignored").mkdir()
    (checkout / "ignored" / "secret.txt").write_text("not code\n")
    (checkout / "my-results" / "runs" / "r").mkdir(parents=True)  # a --results-dir inside the checkout
    (checkout / "my-results" / "runs" / "r" / "summary.json").write_text("{}\n")
    dirty = provenance.source_of(checkout / "pkg", exclude=(checkout / "my-results",))
    assert dirty.commit == clean.commit and dirty.git_commit == clean.commit + "-dirty"
    assert "-x = 1\n+x = 2\n" in dirty.diff  # a tracked change
    assert "+++ b/pkg/new_module.py\n" in dirty.diff and "+y = 3\n" in dirty.diff  # an untracked file
    assert "# untracked file big.bin (1,000,001 bytes) is not copied here" in dirty.diff
    assert "secret" not in dirty.diff and "my-results" not in dirty.diff
    # the diff applies to the commit and gives back the checkout's files
    git(checkout, "stash", "-u", "-q")
    subprocess.run(["git", "apply", "-"], input=dirty.diff, text=True, cwd=checkout, check=True)
    assert (checkout / "pkg" / "new_module.py").read_text() == "y = 3\n"


def test_source_outside_a_checkout_is_unknown(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    assert provenance.source_of(tmp_path / "pkg") == provenance.Source(None)


@pytest.mark.slow
def test_a_dirty_run_stores_its_diff_and_a_clean_one_removes_it(tmp_path, tiny_cifar10, monkeypatch):
    root, _ = tiny_cifar10
    commit = "0123456789abcdef0123456789abcdef01234567"
    diff = "diff --git a/variants/layers.py b/variants/layers.py\n-old\n+new\n"
    monkeypatch.setattr(provenance, "source_of", lambda exclude: provenance.Source(commit, diff))
    outcome = smoke(tmp_path, root)
    config = json.loads(outcome.record.config_path.read_text())
    assert (outcome.record.dir / "source.diff").read_text() == diff
    assert config["git_commit"] == commit + "-dirty"
    assert config["source"] == {"commit": commit, "dirty": True, "diff": "source.diff",
                                "diff_sha256": provenance.Source(commit, diff).diff_sha256}
    assert provenance.version(config) == "0123456789+diff " + config["source"]["diff_sha256"][:8]

    monkeypatch.setattr(provenance, "source_of", lambda exclude: provenance.Source(commit))
    again = smoke(tmp_path, root, force=True)
    assert not (again.record.dir / "source.diff").exists()
    assert json.loads(again.record.config_path.read_text())["source"]["dirty"] is False
