"""Are the farm's field-named table scores the field's? farm/metrics/field.py against SDMetrics.

For each real table (German credit, Pima diabetes), on the farm's own split: the fit rows as the
real side and two synthetic sides, SMOTE's rows (farm/evaluation/smote_baseline.py) and the fit
rows with every column resampled on its own (marginals kept, pairs broken), the farm's
KSComplement, TVComplement, CorrelationSimilarity and ContingencySimilarity beside SDMetrics'
own `compute` on the same columns and pairs. Prints the largest difference per score and the
seconds each side took; writes bench/results/field-metrics.json.

Needs SDMetrics, a bench-only package (bench/README.md):

    .venv-bench/bin/python bench/field_metrics.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from common import git_commit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.data.prepare_tables import prepare_table  # noqa: E402
from farm.evaluation.smote_baseline import smote_rows  # noqa: E402
from farm.metrics.field import column_shapes, pair_trends  # noqa: E402

RESULTS = REPO / "bench" / "results" / "field-metrics.json"
DATASETS = {"german_credit": "german_credit/german_credit.arff",
            "diabetes": "diabetes/diabetes.arff"}


def sdmetrics_scores(real, synth, numeric, nominal) -> dict[str, float]:
    """SDMetrics' own metrics, column by column and pair by pair, averaged as the farm does."""
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
    from sdmetrics.single_column import KSComplement, TVComplement

    out = {"KSComplement": [KSComplement.compute(real[c], synth[c]) for c in numeric],
           "TVComplement": [TVComplement.compute(real[c], synth[c]) for c in nominal],
           "CorrelationSimilarity": [], "ContingencySimilarity": []}
    for a, b in combinations(list(numeric) + list(nominal), 2):
        if a in numeric and b in numeric:
            out["CorrelationSimilarity"].append(
                CorrelationSimilarity.compute(real[[a, b]], synth[[a, b]]))
        else:
            out["ContingencySimilarity"].append(ContingencySimilarity.compute(
                real[[a, b]], synth[[a, b]],
                continuous_column_names=[c for c in (a, b) if c in numeric]))
    return {k: float(np.mean(v)) for k, v in out.items() if v}


def independent_columns(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    return pd.DataFrame({c: frame[c].sample(len(frame), replace=True, random_state=seed + i)
                         .to_numpy() for i, c in enumerate(frame.columns)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()
    commit = git_commit()
    records, lines = [], ["dataset | synthetic side | score | farm | SDMetrics | |diff| "
                          "| farm s | SDMetrics s"]
    for name, rel in DATASETS.items():
        p = prepare_table(name, args.data_dir / rel, None, {}, Path(tempfile.mkdtemp()), 0)
        data = p.trial_data
        real, numeric, nominal = data.fit_frame, data.numeric(), data.nominal()
        sides = {"SMOTE": smote_rows(real, data.target, nominal, len(real), 0),
                 "independent columns": independent_columns(real, 0)}
        for side, synth in sides.items():
            started = time.perf_counter()
            ours = {**column_shapes(real, synth, numeric, nominal),
                    **pair_trends(real, synth, numeric, nominal)}
            ours_s = time.perf_counter() - started
            started = time.perf_counter()
            theirs = sdmetrics_scores(real, synth, numeric, nominal)
            theirs_s = time.perf_counter() - started
            for score, value in theirs.items():
                diff = abs(ours[score] - value)
                records.append({"dataset": name, "synthetic": side, "score": score,
                                "farm": ours[score], "sdmetrics": value, "abs_diff": diff,
                                "farm_seconds": ours_s, "sdmetrics_seconds": theirs_s})
                lines.append(f"{name} | {side} | {score} | {ours[score]:.6f} | {value:.6f} | "
                             f"{diff:.1e} | {ours_s:.2f} | {theirs_s:.2f}")
    worst = max(r["abs_diff"] for r in records)
    lines.append(f"largest difference: {worst:.1e}")
    print("\n".join(lines))
    import sdmetrics
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"commit": commit, "sdmetrics": sdmetrics.__version__,
                                   "largest_abs_diff": worst, "records": records}, indent=2))


if __name__ == "__main__":
    main()
