"""Run ids and recorded recipes do not change: results folders written by earlier code stay valid.

tests/data/run_ids_and_recipes_1cca068.jsonl was written by the code of commit 1cca068 (before runs.py and
the recipe's plan existed): the run id of 883 requests (every run of the three built-in suites under each
recipe that applies, at scales 1, 0.05 and 0.25 and seeds 0 and 1; CIFAR-100, folder datasets, timm specs,
validation splits, normalisations and checkpoint intervals), and the recipe config.json recorded for each
built-in recipe, budget and scale on training splits of four sizes."""

import json
from pathlib import Path

import pytest

from bench import recipe as recipes
from bench.runs import Request

GOLDEN = Path(__file__).parent / "data" / "run_ids_and_recipes_1cca068.jsonl"


def golden(kind: str) -> list[dict]:
    rows = [json.loads(line) for line in GOLDEN.read_text().splitlines()[1:]]
    return [row[kind] for row in rows if kind in row]


def test_every_request_keeps_the_run_id_it_had():
    requests = golden("run")
    assert len(requests) == 883
    changed = []
    for row in requests:
        fields = {key: value for key, value in row.items() if key != "run_id"}
        run_id = Request(**fields).resolve().run_id
        if run_id != row["run_id"]:
            changed.append((fields, row["run_id"], run_id))
    assert changed == []


def test_every_recipe_is_recorded_as_it_was():
    rows = golden("recipe")
    assert len(rows) > 100
    changed = []
    for row in rows:
        plan = recipes.get(row["recipe"], row["scale"], row["budget"]).resolve(row["train_images"])
        if json.loads(json.dumps(plan.to_dict())) != row["record"]:
            changed.append(row)
    assert changed == []


def test_a_checkpoint_interval_is_recorded_but_leaves_the_run_id_alone():
    plain = Request("resnet20", "cifar10", "paper", 0.05).resolve()
    given = Request("resnet20", "cifar10", "paper", 0.05, checkpoint_every=500).resolve()
    assert given.run_id == plain.run_id == "resnet20_cifar10_paper-x0.05_seed0_bb08c4a9"
    assert plain.plan(50_000).to_dict()["checkpoint_every"] == 100
    assert given.plan(50_000).to_dict()["checkpoint_every"] == 500
    with pytest.raises(ValueError, match="--checkpoint-every 7 is not allowed: it must be a positive multiple of "
                                         "the recipe's log interval, log_every=100"):
        Request("resnet20", "cifar10", "paper", 0.05, checkpoint_every=7).resolve()
