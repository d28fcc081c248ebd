"""The paper's CIFAR recipe (§4.2) as data, and its scaling."""

import pytest

from bench import recipe as recipes


def test_paper_recipe_is_section_4_2():
    paper = recipes.RECIPES["paper"]
    assert (paper.batch_size, paper.lr, paper.momentum, paper.weight_decay) == (128, 0.1, 0.9, 1e-4)
    assert paper.milestones == (32_000, 48_000) and paper.iterations == 64_000
    assert (paper.warmup_min_depth, paper.warmup_lr, paper.warmup_until_error, paper.warmup_iterations) == (110, 0.01, 0.8, 400)
    assert paper.normalize == "pixel"
    schedule = paper.resolve(50_000).schedule
    assert [schedule.lr_at(i, False) for i in (0, 31_999, 32_000, 47_999, 48_000)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])
    assert schedule.lr_at(0, True) == 0.01


def test_scale_keeps_the_shape():
    quick = recipes.get("paper", 0.05)
    assert quick.iterations == 3_200 and quick.milestones == (1_600, 2_400) and quick.warmup_iterations == 20
    assert quick.scale == 0.05 and quick.checkpoint_every % quick.log_every == 0
    assert recipes.get("paper", 2).milestones == (64_000, 96_000)


@pytest.mark.parametrize("scale", [0, -1, float("inf"), float("nan")])
def test_bad_scale(scale):
    with pytest.raises(ValueError, match="must be a positive number"):
        recipes.get("paper", scale)


def test_unknown_recipe():
    with pytest.raises(ValueError, match="unknown recipe 'fast'; choose one of: paper, smoke"):
        recipes.get("fast")
