"""Run arrays (paths.ArrayPath): the seeds of one spec trained together equal their runs alone.

The oracle is the run alone (paths.TrainingPath: one net, torch's SGD): in float64 with deterministic
algorithms, an array of 3 seeds stepped 4 times must hold every seed's state_dict and SGD state as its run
alone does, to rtol 1e-10, and give the same evaluation logits; a NaN in one seed's batch must leave the other
seeds exactly as they are alone. Then the records: `bench train --seeds 3` writes the three runs alone's
records, under their run ids."""

from dataclasses import replace

import pytest
import torch

import variants
from bench import recipe as recipes
from bench.data import Source
from bench.execution import Execution
from bench.paths import ArrayPath, TrainingPath

SEEDS = (0, 1, 2)
LRS = (0.1, 0.05, 0.02)  # a learning rate per seed: the deep nets' warm-up ends per seed
# options A and B (CIFAR), D with the deep stem (ImageNet family), and the SE axis: one basic block per stage
SPECS = ["cifar(depth=8)", "cifar(depth=8,shortcut=B)", "resnet18(stem=deep,shortcut=D,blocks=1-1-1-1)",
         "cifar(depth=8,se=true)"]


@pytest.fixture
def deterministic():
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


def _plan():
    """Bag of Tricks' optimiser (Nesterov momentum, weight decay, no decay on BN and biases, label smoothing)
    on small batches: the SGD paths the array must reproduce."""
    recipe = replace(recipes.RECIPES["smoke"], batch_size=16, nesterov=True, no_bn_decay=True, label_smoothing=0.1,
                     weight_decay=5e-4)
    return recipe.resolve(200, None)


def _float64(path):
    """Train and evaluate in float64: the normaliser's output as doubles (its float32 would be the first rounding)."""
    path.normalizer = lambda images, memory_format=None: images.double() / 255 - 0.5
    return path


def _net(spec, seed):
    torch.manual_seed(seed)  # as train.py draws a run's initialisation
    return variants.create(variants.parse(spec), num_classes=10).double()


def _array_and_alone(spec, root):
    """Data, plan, execution, an array of SEEDS and their runs alone, all in float64 on the CPU."""
    plan = _plan()
    data = Source(root, download=False).load("cifar10", plan.inputs)
    execution = Execution(torch.device("cpu"), precision="fp32", channels_last=False, compile="off")
    array = _float64(ArrayPath([_net(spec, seed) for seed in SEEDS], data, plan, SEEDS, execution))
    alone = [_float64(TrainingPath(_net(spec, seed), data, plan, seed, execution)) for seed in SEEDS]
    return data, plan, execution, array, alone


def _batches(path, steps):
    """Each seed's first `steps` batches of epoch 0, as its loader gives them."""
    streams = [loader.batches(0) for loader in path.loaders]
    return [[next(stream) for stream in streams] for _ in range(steps)]


def _assert_same(array_state, solo_state, what):
    assert list(array_state) == list(solo_state), what
    for key, value in solo_state.items():
        if value.dtype.is_floating_point:
            torch.testing.assert_close(array_state[key], value, rtol=1e-10, atol=1e-12, msg=f"{what}: {key}")
        else:  # num_batches_tracked
            assert torch.equal(array_state[key], value), f"{what}: {key}"


def _assert_seed_equals_alone(array, index, solo):
    model_state, optimizer_state = array.seed_state(index)
    _assert_same(model_state, solo.model.state_dict(), f"seed {index} state_dict")
    solo_optimizer = solo.optimizer.state_dict()
    assert optimizer_state["param_groups"] == solo_optimizer["param_groups"]
    assert sorted(optimizer_state["state"]) == sorted(solo_optimizer["state"])
    _assert_same({number: entry["momentum_buffer"] for number, entry in optimizer_state["state"].items()},
                 {number: entry["momentum_buffer"] for number, entry in solo_optimizer["state"].items()},
                 f"seed {index} momentum buffers")


@pytest.mark.parametrize("spec", SPECS)
def test_an_array_of_three_seeds_equals_their_runs_alone_in_float64(spec, tiny_cifar10, deterministic):
    root, _ = tiny_cifar10
    data, plan, execution, array, alone = _array_and_alone(spec, root)
    groups = [len(group["params"]) for group in alone[0].optimizer.param_groups]
    assert len(groups) == 2 and alone[0].optimizer.param_groups[1]["weight_decay"] == 0.0  # bot's no-decay group

    for batches in _batches(array, 4):
        array.train_step(batches, list(LRS))
        for solo, (images, labels), lr in zip(alone, batches, LRS):
            solo.step(images, labels, lr)
    for index, solo in enumerate(alone):
        _assert_seed_equals_alone(array, index, solo)
    # the training curves' sums, seed by seed
    for (loss, error), solo in zip(array.seed_totals(), alone):
        solo_loss, solo_error = solo.totals()
        assert loss == pytest.approx(solo_loss, rel=1e-10) and error == solo_error

    # evaluation: every seed on one shared batch of the test split, in evaluation mode (running statistics)
    images = data.test.images[:32]
    logits = array.logits(images)
    for index, solo in enumerate(alone):
        solo.model.eval()
        with torch.no_grad():
            expected = solo.model(solo.normalizer(images))
        torch.testing.assert_close(logits[index].double(), expected, rtol=1e-10, atol=1e-12)
    for (loss, error), solo in zip(array.seed_evaluation(data.test), alone):
        solo_loss, solo_error = solo.evaluate(data.test)
        assert loss == pytest.approx(solo_loss, rel=1e-10) and error == solo_error


def test_a_nan_in_one_seed_freezes_it_and_leaves_the_others_as_alone(tiny_cifar10, deterministic):
    root, _ = tiny_cifar10
    data, plan, execution, array, alone = _array_and_alone(SPECS[1], root)
    for step, batches in enumerate(_batches(array, 4)):
        if step == 2:  # seed 1's batch turns NaN at the third step
            images, labels = batches[1]
            poisoned = images.double()
            poisoned[0, 0, 0, 0] = float("nan")
            batches[1] = (poisoned, labels)
            frozen, _ = array.seed_state(1)
        array.train_step(batches, list(LRS))
        for index in (0, 2):
            alone[index].step(*batches[index], LRS[index])
    assert array.alive.tolist() == [True, False, True]
    for index in (0, 2):
        _assert_seed_equals_alone(array, index, alone[index])
    after, _ = array.seed_state(1)
    params = {name for name, _ in array.base.named_parameters()}
    for name in params:  # seed 1's weights stopped at the step its loss became NaN
        assert torch.equal(after[name], frozen[name]), name
    losses = [loss for loss, _ in array.seed_totals()]
    assert losses[1] != losses[1] and losses[0] == losses[0] and losses[2] == losses[2]  # NaN only in seed 1


def test_a_seed_state_resumes_a_run_alone_and_back(tiny_cifar10, deterministic):
    """An array and a run alone resume each other's checkpoints: seed_state is a run alone's format."""
    root, _ = tiny_cifar10
    spec = SPECS[0]
    data, plan, execution, array, _ = _array_and_alone(spec, root)
    batches = _batches(array, 4)
    for step in batches[:2]:
        array.train_step(step, list(LRS))
    # seed 2 goes on alone from the array's state; a new array takes it back after two more steps
    solo = _float64(TrainingPath(_net(spec, 7), data, plan, 2, execution))
    solo.load_seed(0, *array.seed_state(2))
    for step in batches[2:]:
        array.train_step(step, list(LRS))
        solo.step(*step[2], LRS[2])
    _assert_seed_equals_alone(array, 2, solo)
    again = _float64(ArrayPath([_net(spec, 9) for _ in SEEDS], data, plan, SEEDS, execution))
    again.load_seed(1, *solo.seed_state(0))
    _assert_seed_equals_alone(again, 1, solo)


@pytest.mark.slow
def test_bench_train_seeds_writes_the_runs_alone_records(tmp_path, tiny_cifar10, capsys):
    """`bench train resnet20 --recipe smoke --seeds 3` in fp32: three records under the run ids of the three
    runs alone, whose curves equal theirs (iterations and lr exactly, losses and errors to float noise), each
    with its own W&B run."""
    from test_tracking import offline_runs

    from bench import records
    from bench.cli import main
    from bench.runs import Request

    root, _ = tiny_cifar10
    common = ["--recipe", "smoke", "--data-dir", str(root), "--no-download", "--device", "cpu", "--precision", "fp32"]
    assert main(["train", "resnet20", *common, "--seeds", "3", "--results-dir", str(tmp_path / "array"),
                 "--wandb", "offline"]) == 0
    printed = capsys.readouterr().out
    assert "run array of 3 seeds of resnet20, trained together in one process: seeds 0, 1, 2" in printed
    for seed in SEEDS:
        assert main(["train", "resnet20", *common, "--seed", str(seed), "--results-dir", str(tmp_path / "alone"),
                     "--wandb", "disabled"]) == 0
    wandb_ids, first_losses = set(), {}
    for seed in SEEDS:
        run_id = Request("resnet20", "cifar10", "smoke", seed=seed).resolve().run_id
        array, alone = records.RunRecord(tmp_path / "array", run_id), records.RunRecord(tmp_path / "alone", run_id)
        assert array.status() == alone.status() == "finished"
        assert array.summary()["iterations"] == alone.summary()["iterations"] == 40
        config = __import__("json").loads(array.config_path.read_text())
        assert config["execution"]["array_seeds"] == [0, 1, 2] and config["seed"] == seed
        rows, solo_rows = array.metrics(), alone.metrics()
        assert [row["iteration"] for row in rows] == [row["iteration"] for row in solo_rows] == list(range(5, 41, 5))
        assert [row["lr"] for row in rows] == [row["lr"] for row in solo_rows]
        # fp32 cannot give the 1e-5 the issue asked: the array's kernels (a grouped convolution, batch norm over
        # stacked channels) round in another order, and SGD grows a last-bit difference step by step. The floor
        # is measured against the run alone in the other memory layout, which is as far from the run alone
        # (benchmarks/array_noise.py, results/perf/cpu/array-noise.md: 1e-5 at the third step, 3.5e-2 by the
        # tenth). So: the first log point (iteration 5, measured 3e-5) tightly, the rest within that floor.
        first_gap = abs(rows[0]["train/loss"] / solo_rows[0]["train/loss"] - 1)
        assert first_gap < 1e-3, (seed, first_gap)
        for row, solo in zip(rows, solo_rows):
            for key in ("train/loss", "test/loss"):
                if key in solo:
                    assert row[key] == pytest.approx(solo[key], rel=5e-2), (seed, row["iteration"], key)
        first_losses[seed] = (rows[0]["train/loss"], solo_rows[0]["train/loss"])
        assert array.summary()["test_loss"] == pytest.approx(alone.summary()["test_loss"], rel=2e-2)
        wandb_ids.add(array.summary()["wandb_id"])
    for seed, (loss, _) in first_losses.items():  # each record holds its own seed: nearer its run alone than any other
        gaps = {other: abs(loss - solo_loss) for other, (_, solo_loss) in first_losses.items()}
        assert min(gaps, key=gaps.get) == seed, (seed, gaps)
    found = offline_runs(tmp_path / "array")
    assert {run_id for run_id, _ in found.values()} == wandb_ids and len(wandb_ids) == 3
    for _, history in found.values():  # each W&B run has its own seed's 8 rows
        assert sorted(values["iteration"] for values in history.values()) == list(range(5, 41, 5))
