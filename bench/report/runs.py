"""Run records as pandas tables: one row per expected run (finished, diverged, failed or missing) and curves.

Reports are built only from RESULTS/runs/*: nothing here needs W&B. A run the suite expects but that has
no record is a row with status `missing`, never a zero.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import variants

from .. import provenance, records
from ..cost import measure

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference"  # bench/reference, package data of the wheel
SUMMARY_COLUMNS = ("status", "test_error", "val_error", "train_error", "params", "macs", "train_img_s",
                   "inference_img_s", "peak_memory_mb", "wall_seconds", "iterations")
# Every variant axis as `variants.Spec` declares it: a column of the aggregated table.
AXES = tuple(axis.name for axis in variants.Spec.axes())


def load_runs(results_dir: str | Path, planned) -> pd.DataFrame:
    """One row per planned run (a suite.PlannedRun list), with its record's config and summary when present."""
    rows = []
    for run in planned:
        record = records.RunRecord(results_dir, run.run_id)
        summary = record.summary() or {}
        config = records.read_json(record.config_path) or {}
        row = {"run_id": run.run_id, "spec": run.spec, "seed": run.seed, "experiments": ",".join(run.experiments)}
        row.update({key: summary.get(key) for key in SUMMARY_COLUMNS})
        row["status"] = summary.get("status", "missing")
        execution = config.get("execution", {})
        row["device"] = execution.get("device_name")
        row["precision"] = execution.get("precision")
        row["recipe"] = (config.get("recipe") or {}).get("name")
        row["scale"] = (config.get("recipe") or {}).get("scale")
        row["iterations_planned"] = (config.get("recipe") or {}).get("iterations")
        row["num_classes"] = (config.get("dataset") or {}).get("num_classes")
        row["updated_at"] = summary.get("updated_at")
        row["code"] = provenance.version(config)
        rows.append(row)
    return pd.DataFrame(rows)


def load_curves(results_dir: str | Path, runs: pd.DataFrame) -> pd.DataFrame:
    """metrics.jsonl of the given runs, long format: spec, seed, iteration, train/error, test/error, ..."""
    frames = []
    for run in runs.itertuples():
        rows = records.RunRecord(results_dir, run.run_id).metrics()
        if rows:
            frame = pd.DataFrame(rows)
            frame["spec"], frame["seed"] = run.spec, run.seed
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def reference(name: str) -> pd.DataFrame:
    """A published-figures table from bench/reference/<name>.csv (package data; each row names its source)."""
    return pd.read_csv(REFERENCE_DIR / f"{name}.csv")


def aggregate(runs: pd.DataFrame, num_classes: int, image_size: int = 32) -> pd.DataFrame:
    """Per spec: mean, std and count of the final test error over finished seeds, plus what is missing.
    Params and MACs are those its records hold (summary.json: the model as trained, at the trained resolution);
    a spec with no recorded run yet is counted from the spec itself, so the cost columns are never empty."""
    out = []
    for spec, group in runs.groupby("spec", sort=False):
        finished = group[group.status == "finished"]
        errors = finished.test_error.astype(float)
        parsed = variants.parse(spec)
        recorded = group[["params", "macs"]].dropna() if {"params", "macs"} <= set(group) else pd.DataFrame()
        if len(recorded):
            params, macs = int(recorded.params.iloc[0]), int(recorded.macs.iloc[0])
        else:
            cost = measure(parsed, image_size=image_size, num_classes=num_classes)
            params, macs = cost.params, cost.macs
        out.append({
            "spec": spec,
            "seeds": len(group),
            "finished": len(finished),
            "diverged": int((group.status == "diverged").sum()),
            "failed": int((group.status == "failed").sum()),
            "unfinished": int(group.status.isin(["interrupted", "running"]).sum()),
            "missing": int((group.status == "missing").sum()),
            "test_error_mean": errors.mean() if len(errors) else None,
            "test_error_std": errors.std(ddof=1) if len(errors) > 1 else None,
            "test_errors": errors.tolist(),  # per finished seed, for the statistics (stats.py)
            "params": params, "macs": macs,
            "train_img_s": finished.train_img_s.astype(float).median() if len(finished) else None,
            "devices": ", ".join(sorted({name for name in finished.device if isinstance(name, str)})) or None,
            **_axes(parsed),
        })
    return pd.DataFrame(out)


def _axes(spec) -> dict:
    if isinstance(spec, variants.TimmSpec):
        return {axis: None for axis in AXES} | {"family": "timm"}
    return spec.axis_values()


def error_cell(row) -> str:
    """The paper's style: '6.61 ± 0.16' over seeds, a bare value for one seed, and what is not there."""
    if row is None:
        return "not in suite"
    notes = [f"{row[key]} {key}" for key in ("diverged", "failed", "unfinished", "missing") if row[key]]
    if row["finished"] == 0:
        return ", ".join(notes) or "missing"
    value = f"{row['test_error_mean']:.2f}"
    if row["finished"] > 1:
        value += f" ± {row['test_error_std']:.2f} (n={row['finished']})"
    return value + (f" ({', '.join(notes)})" if notes else "")
