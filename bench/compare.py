"""`python -m bench compare SPEC SPEC ...`: the quickest way to answer "is X better than Y, beyond seed noise".

The specs become a one-experiment suite (report kind `compare`, the first spec the baseline), trained through
the same scheduler, runner and records as any suite, so finished runs are reused and an interrupted
comparison continues; then the comparison page is built (costs, the statistics of stats.py, curves, final
errors with their confidence intervals) and the verdicts are printed.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd

import variants

from . import data as datasets
from . import suite as suites
from .errors import UserError

EXPERIMENT = "compare"


def comparison_suite(specs: list[str], dataset: str) -> suites.Suite:
    """The specs (canonical, in the order given) as a suite of one `compare` experiment on `dataset`."""
    parsed = [variants.parse(spec) for spec in specs]
    canonical = [variants.canonical(spec) for spec in parsed]
    if len(canonical) < 2:
        raise UserError("compare needs at least two specs, e.g. resnet20 'resnet20(shortcut=B)'")
    repeated = sorted({spec for spec in canonical if canonical.count(spec) > 1})
    if repeated:
        raise UserError(f"{repeated[0]} is given twice (spec strings that name the same net count as one)")
    declared = datasets.info(dataset)
    readable = re.sub(r"[^A-Za-z0-9]+", "-", "-vs-".join(canonical)).strip("-")[:60]
    digest = hashlib.sha256("\n".join(canonical).encode()).hexdigest()[:6]
    name = f"compare-{readable}-{digest}"
    title = ", ".join(canonical[1:]) + f" against {canonical[0]}"
    experiment = suites.Experiment(EXPERIMENT, title, "compare", tuple(canonical))
    return suites.Suite(name, declared.name, Path(name), {EXPERIMENT: experiment}, declared.default_recipe,
                        dict(zip(canonical, parsed)))


def verdicts(out_dir: Path) -> list[str]:
    """One line per compared spec, read from the statistics table the report wrote."""
    path = out_dir / f"{EXPERIMENT}_statistics.csv"
    if not path.is_file():
        return ["no statistics: no finished runs to compare"]
    table = pd.read_csv(path)
    return [f"{row.spec} against {row.baseline}: {row.verdict}" for row in table.itertuples()]
