"""What a new user meets first (issue 14): records others can read, and one-line answers to mistakes."""

import os
import stat

import pytest

from bench import records
from bench.cli import main


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_records_honour_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        record = records.RunRecord(tmp_path, "run")
        record.write_config({"spec": "resnet20"})
        record.write_summary({"status": "running"})
        record.append_metrics({"iteration": 1})
        record.append_metrics({"iteration": 2})
        record.truncate_metrics(1)  # what a resume does: the file is rewritten
        for path in (record.config_path, record.summary_path, record.metrics_path):
            assert stat.S_IMODE(path.stat().st_mode) == mode, path.name
    finally:
        os.umask(previous)


def test_bare_command_lists_every_command_on_one_line(capsys):
    assert main([]) == 2
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("    ")]
    assert listed == ["list", "measure", "train", "suite", "compare", "report", "perf", "dashboard"]


@pytest.mark.parametrize("extra, message", [
    (["--seed", "-1"], "error: --seed -1 is not allowed: it must be 0 or more"),
    (["--val-split", "-5"], "error: --val-split -5 is not allowed: hold out 1 to 199 of the 200 training images, "
                            "or 0 for no validation split"),
])
def test_train_mistakes_say_what_is_allowed(tmp_path, tiny_cifar10, capsys, extra, message):
    root, _ = tiny_cifar10
    code = main(["train", "resnet20", "--recipe", "smoke", "--data-dir", str(root), "--no-download", "--wandb",
                 "disabled", "--device", "cpu", "--results-dir", str(tmp_path / "results"), *extra])
    assert code == 2 and capsys.readouterr().err.strip() == message


def test_an_unwritable_results_folder_is_named_by_its_option(tmp_path, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert main(["train", "resnet20", "--results-dir", str(blocked / "results")]) == 2
    assert capsys.readouterr().err.strip() == f"error: --results-dir {blocked / 'results'} is not writable (Not a directory)"


def test_suite_help_explains_the_suite_argument_for_run_all_users(capsys):
    with pytest.raises(SystemExit):
        main(["suite", "--help"])
    assert "`./run_all.sh cifar10 ARGS` runs `python -m bench suite cifar10 ARGS`" in " ".join(capsys.readouterr().out.split())
