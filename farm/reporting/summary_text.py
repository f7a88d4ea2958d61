"""The run's last lines: the summary as text for the terminal (report.py writes the same
numbers as a page). Reads the summary dict and where the experiment lives, nothing else.
"""

from __future__ import annotations

from farm.infra.phases import format_phases
from farm.infra.storage import Store


def _format_evaluator(section: dict | None) -> list[str]:
    """The evaluator's headline: ceiling, and per pool CAS and real + synthetic, beside chance."""
    if not section:
        return []
    lines = []
    config = section["config"]
    for dataset, info in section["datasets"].items():
        lines += ["", f"  {dataset}: evaluator tested on {info['test_images']} held-out real "
                      f"images (one is {1 / info['test_images']:.4f}); chance {info['chance']:.3f}",
                  f"    protocol: {info.get('protocol') or config['arch']}",
                  f"    {'trained on':40} {'accuracy':>8} {'of ceiling':>10} {'gain':>7}",
                  f"    {'real train split (ceiling)':40} {info['ceiling']['accuracy']:>8.3f}"]
        for name, pool in info["pools"].items():
            mark = " *" if name == info["best_pool"] else ""
            if "same_as" in pool:
                lines.append(f"    pool {name}{mark}: the same images as pool {pool['same_as']}")
                continue
            if "not_trained" in pool:
                lines.append(f"    pool {name}{mark}: {_val_scores(pool)}, not trained for "
                             f"the final figures ({pool['not_trained']})")
                continue
            cas, both = pool["cas"]["accuracy"], pool["real_plus_synthetic"]["accuracy"]
            ratio = f"{pool['cas_ratio']:.2f}" if pool["cas_ratio"] is not None else "-"
            label = f"synthetic: {name} ({pool['images']} images){mark}"
            lines += [f"    {label:40} {cas:>8.3f} {ratio:>10}",
                      f"    {'real + synthetic: ' + name:40} {both:>8.3f} {'':>10} "
                      f"{pool['augmentation_gain']:>+7.3f}"]
            if pool.get("verdict"):
                lines.append(f"      {pool['verdict']}")
            lines.append(f"      on the val slice: {_val_scores(pool)}")
        if info.get("control"):
            lines.append(f"    {'control: real + noise images':40} "
                         f"{info['control']['accuracy']:>8.3f} {'':>10} "
                         f"{info['control']['accuracy'] - info['ceiling']['accuracy']:>+7.3f}")
        lines.append(f"    (* the best pool: {info.get('best_pool_rule', 'lowest mean KID')}; "
                     "accuracies are means over the classifier seeds)")
    for dataset, error in section.get("errors", {}).items():
        lines.append(f"  {dataset}: evaluator failed: {error}")
    return lines


def _val_scores(pool: dict) -> str:
    """What chose among the pools: the choice classifier's val accuracy and the probe's
    usefulness, each '-' where not measured."""
    choice, useful = pool.get("choice_accuracy"), pool.get("usefulness")
    return (f"val accuracy {'-' if choice is None else f'{choice:.3f}'}, usefulness "
            f"{'-' if useful is None else f'{useful:.3f}'}")


def format_summary(summary: dict, store: Store) -> str:
    lines = ["", f"Experiment {summary['name']}: {len(summary['trials'])} trials in "
             f"{summary.get('seconds', 0):.0f} s, {summary.get('disk_bytes', 0) / 2**20:.1f} MB "
             "on disk"]
    if summary.get("phases"):
        went = format_phases(summary["phases"], summary.get("phase_use"))
        lines.append(f"  where the time went: {went}")
    for dataset, info in summary["datasets"].items():
        if info["kind"] == "image":
            lines.append(f"  {dataset}: judge accuracy on held-out real images "
                         f"{info['judge']['test_accuracy']:.3f} "
                         f"(chance {info['judge']['chance']:.3f})")
            continue
        lines.append(f"  {dataset}: real train -> test (TRTR) accuracy "
                     f"{info['trtr']['accuracy']:.3f}, AUC {info['trtr']['auc']:.3f}")
        smote = info.get("smote") or {}
        if smote.get("tstr"):
            field = smote.get("field") or {}
            lines.append(f"  {dataset}: SMOTE baseline (interpolation) TSTR accuracy "
                         f"{smote['tstr']['accuracy']:.3f}, AUC {smote['tstr']['auc']:.3f}, "
                         f"XGBoost detection {field.get('detection_xgb', float('nan')):.3f}, "
                         f"DCR share {field.get('dcr_share', float('nan')):.3f}, "
                         f"DCR / holdout's {field.get('dcr_ratio', float('nan')):.2f}")
        for t in summary["trials"]:
            if t["dataset"] == dataset and t.get("pick"):
                lines.append(f"  {dataset}: the farm's pick among the families by "
                             f"{t['select_metric']}: {t['trial']} "
                             f"({t['metrics'][t['select_metric']]:.4f}, TSTR AUC "
                             f"{t['tstr']['auc']:.3f})")
    lines += _format_evaluator(summary.get("evaluator"))
    for kind, header in (("table", f"{'detect':>7} {'TSTR acc':>8} {'TSTR AUC':>8} "
                                   f"{'real+syn acc':>12}"),
                         ("image", "judge accuracy at the chosen epoch")):
        rows = [t for t in summary["trials"]
                if summary["datasets"][t["dataset"]]["kind"] == kind]
        if rows:
            lines += ["", f"  {'trial':36} {'setting':24} {'best epoch':>10} {'chosen by':>24} "
                          f"{header}"]
        for t in rows:
            if t["checkpoint"] is None:
                lines.append(f"  {t['trial']:36} {t['setting']:24} failed: {t['error']}")
                continue
            m = t["metrics"]
            chosen = f"{t['select_metric']} {m.get(t['select_metric'], float('nan')):.4f}"
            if kind == "table":
                rest = (f"{m.get('detection_auc', float('nan')):>7.3f} "
                        f"{t['tstr']['accuracy']:>8.3f} {t['tstr']['auc']:>8.3f} "
                        f"{t['real_plus_synthetic']['accuracy']:>12.3f}")
            else:
                accuracy = m.get("judge_accuracy", m.get("judge_accuracy/mean", float("nan")))
                rest = f"{accuracy:.3f} ({t['synthetic_images']} images exported)"
            lines.append(f"  {t['trial']:36} {t['setting']:24} {t['best_epoch']:>10} "
                         f"{chosen:>24} {rest}")
    home = store.location
    lines += ["", f"Synthetic data: {home('synthetic')}",
              f"Summary:        {home('summary.json')}",
              f"Report:         {home('report.html')}",
              f"TensorBoard:    tensorboard --logdir {store.folder}"]
    if store.remote:
        lines.append(f"(a copy of all but the checkpoints is on this machine: {store.folder})")
    return "\n".join(lines)
