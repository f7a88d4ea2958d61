"""The run's last lines name the farm's pick among the table families."""

from types import SimpleNamespace

from farm.reporting.summary_text import format_summary


def _trial(name, family, score, pick):
    return {"trial": name, "family": family, "dataset": "diabetes", "setting": "defaults",
            "checkpoint": "x", "best_epoch": 3, "select_metric": "select/score",
            "metrics": {"select/score": score, "detection_auc": 0.6}, "chosen": True,
            "pick": pick, "tstr": {"accuracy": 0.7, "auc": 0.81},
            "real_plus_synthetic": {"accuracy": 0.75}}


def test_the_last_lines_name_the_farms_pick_for_each_table():
    summary = {"name": "demo", "trials": [_trial("tabular-a_diabetes_000", "tabular-a", 0.61,
                                                 False),
                                          _trial("tabular-forest_diabetes_001", "tabular-forest",
                                                 0.72, True)],
               "datasets": {"diabetes": {"kind": "table",
                                         "trtr": {"accuracy": 0.8, "auc": 0.85}}}}
    store = SimpleNamespace(location=lambda name: f"/runs/demo/{name}", folder="/runs/demo",
                            remote=False)
    text = format_summary(summary, store)
    assert ("diabetes: the farm's pick among the families by select/score: "
            "tabular-forest_diabetes_001 (0.7200, TSTR AUC 0.810)") in text
    assert text.count("the farm's pick") == 1
