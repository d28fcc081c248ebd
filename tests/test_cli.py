"""The command line: `python -m bench list` and `measure`, and one-line errors with a non-zero exit."""

import json
import subprocess
import sys

import pytest

from bench.cli import main


def test_measure_json(capsys):
    assert main(["measure", "resnet20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["spec"] == "resnet20" and result["image_size"] == 32
    assert result["params"] == 269_722
    assert result["macs"] == pytest.approx(40.8e6, rel=0.03)
    assert [stage["name"] for stage in result["stages"]] == ["stem", "layer1", "layer2", "layer3", "global_pool", "fc"]


def test_measure_table_names_canonical_spec_and_stages(capsys):
    assert main(["measure", "resnet50(stride_in=3x3,stem=deep,shortcut=D)", "--image-size", "64", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("resnet50d: imagenet, 50 layers")
    assert "input 64x64, 10 classes" in out
    assert "layer4" in out and "not counted by fvcore" in out and "aten::max_pool2d" in out


def test_list_with_pattern_in_natural_order(capsys):
    assert main(["list", "plain*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["plain18", "plain20", "plain32", "plain34", "plain44", "plain56", "plain110"]
    assert "CIFAR plain-20 (Figure 6)" in lines[1]
    assert main(["list", "resnet5*"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == [
        "resnet50", "resnet50b", "resnet50c", "resnet50d", "resnet56"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["measure", "resnet51"], "error: unknown variant 'resnet51'; closest: resnet56, resnet50"),
        (["measure", "resnet20(depth=21)"], "error: depth=21 is not a CIFAR ResNet depth"),
        (["measure", "resnet20", "--image-size", "0"], "error: --image-size 0 is not allowed"),
        (["list", "resnet9*"], "error: no variant matches 'resnet9*'"),
    ],
)
def test_user_errors_are_one_line_with_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_cli_process_exit_status_and_no_traceback():
    done = subprocess.run([sys.executable, "-m", "bench", "measure", "resnet34(shortcut=E)"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == "error: shortcut=E is not allowed; choose one of: A, B, C, D, none, scaled, exclusive_gate, shortcut_gate, dropout\n"
    assert done.stdout == ""


@pytest.mark.parametrize("argv, error", [
    (["train", "resnet20", "--epochs", "10"],
     "error: python -m bench train has no option --epochs (a run's length is its recipe's, times --scale: "
     "--recipe smoke for a short one, --scale 0.1 for a tenth)"),
    (["compare", "resnet20", "plain20", "--datset=cifar100"],
     "error: python -m bench compare has no option --datset; did you mean --dataset?"),
])
def test_an_unknown_option_names_the_commands_closest_options(capsys, argv, error):
    assert main(argv) == 2
    usage, message = capsys.readouterr().err.splitlines()
    assert usage.startswith(f"usage: python -m bench {argv[0]} [OPTIONS] SPEC") and "--help lists the options" in usage
    assert message == error


def test_a_dataset_given_as_a_suite_points_to_the_ways_of_training_it(capsys):
    assert main(["suite", "cifar100"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "(cifar100 is a dataset: `bench compare SPEC SPEC --dataset cifar100`, or a suite file with "
        "dataset = \"cifar100\": docs/suites.md, \"Your own suite\")")
