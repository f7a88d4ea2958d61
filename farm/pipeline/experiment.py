"""One farm run: plan -> prepare data -> grow every family with Tune -> export best epochs ->
summary.

Layout of an experiment (`<storage>/<name>/`, a folder or a URI: see farm/infra/storage.py):
  splits/<dataset>.json                  the split manifest (indices + source sha256)
  tune/<family>_<dataset>[_<class>]_<n>/ Tune's trial folders: checkpoints, progress, TensorBoard
  synthetic/<dataset>/<trial>.csv        tables, with synthetic/<dataset>/manifest.json
  synthetic/<dataset>/trials/<trial>/    each image trial's export, with its manifest.json
  synthetic/<dataset>/pools/<pool>/      the pooled image datasets, with their manifest.json
  evaluator/                             the Ray Train evaluator's runs and TensorBoard events
  figures/                               every picture of the report, as PNG
  summary.json, report.html, report.md
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from farm.config.classifiers import evaluator_config
from farm.config.family_params import CPU_ONLY_KINDS, MODALITY
from farm.config.load import load_config
from farm.config.plan import format_plan, plan_trials, select_families
from farm.data.images import write_image_folder
from farm.data.prepare_tables import (attach_black_box, class_counts, dataset_name_for,
                                      prepare_tables)
from farm.evaluation.evaluate_pools import evaluate_image_dataset
from farm.evaluation.table_scores import (field_scores, real_plus_synthetic,
                                          smote_baseline, trtr, tstr)
from farm.infra.atomic import replacing
from farm.infra.errors import ConfigError, FarmError
from farm.infra.phases import PhaseClock, phase_use
from farm.infra.storage import Store, experiment_store
from farm.pipeline.export import (draw_images, provenance, sample_from_checkpoint,
                                  write_black_box_figures, write_csv_atomic, write_trial_figures)
from farm.pipeline.shared_starts import grow_shared_starts, needed_starts, start_pictures
from farm.reporting.curves import write_family_curves
from farm.reporting.report import write_report
from farm.reporting.summary_text import format_summary
from farm.sampling.finished import selection_value

SUMMARY_VERSION = 2
RUN_FILE = "run.json"  # the settings and configuration an experiment started with, for --resume
RESUMABLE = ("preset", "only", "data_dir", "seed", "tabular_data", "target", "image_data",
             "gpus_per_trial")
KINDS_WITH_BLACK_BOX = {"tabular-b"}


@dataclass
class Settings:
    """Everything a run needs, from the command line."""

    trials_dir: Path
    preset: str = "smoke"
    only: list[str] | None = None
    data_dir: str | None = None
    storage_path: str = "results"
    name: str | None = None
    address: str | None = None
    local: bool = False             # --local: an embedded Ray even where a cluster runs
    seed: int | None = None
    dry_run: bool = False
    tabular_data: str | None = None
    target: str | None = None
    image_data: str | None = None
    gpus_per_trial: float | None = None
    resume: bool = False
    debug: bool = False             # --debug: Ray's and Tune's whole output, full tracebacks


def _image_classes(families, settings, data_cfg) -> dict[str, tuple[str, ...]]:
    """Class names of every image dataset an image family grows on (a folder scan, no
    decoding), after that dataset's `data.images.classes` subset, which is checked here: a class
    the folder lacks is one line naming the folder, before anything is decoded."""
    from farm.data.images import scan_image_folder
    from farm.data.prepare_images import chosen_classes, image_root

    found = {}
    for section in families.values():
        if MODALITY[section["kind"]] != "image":
            continue
        names = ([dataset_name_for(settings.image_data)] if settings.image_data
                 else section["datasets"])
        for name in names:
            if name not in found:
                root = image_root(name, settings.data_dir, settings.image_data)
                classes, _ = scan_image_folder(root)
                found[name] = chosen_classes(data_cfg, name, classes, root)
    return found


def _settings_and_config(settings: Settings, store: Store) -> tuple[Settings, dict]:
    """A new run loads trials/*.yaml; a resumed one takes the settings and configuration its
    experiment started with (run.json), so the plan, split and trials are the same."""
    experiment_dir = store.folder
    run_file = experiment_dir / RUN_FILE
    if not settings.resume:
        if store.exists(RUN_FILE):
            raise ConfigError("an experiment of that name exists; continue it with --resume "
                              "--name, or choose another --name", where=store.home)
        return settings, load_config(settings.trials_dir, settings.preset)
    store.pull()  # a remote experiment's split, judge and settings, on whichever machine
    try:
        stored = json.loads(run_file.read_text())
    except FileNotFoundError:
        raise ConfigError("no experiment to resume here (no run.json)", where=store.home) \
            from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"unreadable ({exc.msg})", where=run_file) from None
    resumed = dataclasses.replace(settings, **{k: stored["settings"][k] for k in RESUMABLE})
    print(f"Resuming {experiment_dir.name} (preset {resumed.preset}) with the settings it "
          "started with")
    return resumed, stored["config"]


def _gpu_shares(trials: list[dict], gpus_per_trial: float | None) -> None:
    """--gpus-per-trial replaces every family's GPU share (and is honoured even before an
    autoscaling cluster has started a GPU node), but for kinds that never use a GPU
    (`CPU_ONLY_KINDS`: a share would only keep a GPU trial waiting)."""
    if gpus_per_trial is None:
        return
    if gpus_per_trial < 0 or (gpus_per_trial > 1 and not float(gpus_per_trial).is_integer()):
        raise ConfigError(f"--gpus-per-trial {gpus_per_trial}: use a share in [0, 1] "
                          "(0.25 packs four trials per GPU) or a whole number of GPUs")
    for t in trials:
        if t["kind"] not in CPU_ONLY_KINDS:
            t["resources"]["gpu"] = float(gpus_per_trial)


def run(settings: Settings) -> dict | None:
    name = settings.name or f"{settings.preset}-{datetime.now():%Y%m%d-%H%M%S}"
    store = experiment_store(settings.storage_path, name)
    experiment_dir = store.folder  # the driver's files; Tune's go to store.location("tune")
    settings, config = _settings_and_config(settings, store)
    if not settings.dry_run:
        store.check_writable()  # a bucket it cannot write to: one line before any data work
    families = select_families(config, settings.only)
    data_cfg = config["data"]
    seed = settings.seed if settings.seed is not None else int(data_cfg.get("split_seed", 0))
    if settings.target and not settings.tabular_data:
        raise ConfigError("--target needs --tabular-data (the registry datasets know their target)")
    user = {}
    if settings.tabular_data:
        user["table"] = [dataset_name_for(settings.tabular_data)]
    if settings.image_data:
        user["image"] = [dataset_name_for(settings.image_data)]
    classes = _image_classes(families, settings, data_cfg)
    trials = plan_trials(families, seed, user, classes)
    _gpu_shares(trials, settings.gpus_per_trial)
    forced_gpu = bool(settings.gpus_per_trial)

    if settings.dry_run:
        print(f"Experiment {name!r} (preset {settings.preset}) would grow {len(trials)} trials:")
        print(format_plan(trials, gpus_available=forced_gpu))
        if not forced_gpu:
            print("GPU shares apply only on a cluster with GPUs (or with --gpus-per-trial).")
        print("Nothing was trained (--dry-run).")
        return None

    started = time.time()
    clock = PhaseClock()
    from farm.pipeline import cluster  # Ray and Tune load here, not for --dry-run
    from farm.tune import runner

    ray_choice = cluster.choose_ray(settings.address, settings.local)  # seconds, before any write
    print(ray_choice.line, flush=True)
    fresh = not settings.resume if store.remote else not experiment_dir.exists()
    if fresh:
        store.clear()  # a remote experiment's local copy left by an earlier attempt
    try:
        experiment_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the experiment folder ({exc.strerror})",
                          where=experiment_dir) from None
    try:
        if not settings.resume:
            _write_json({"settings": {k: getattr(settings, k) for k in RESUMABLE},
                         "config": config}, experiment_dir / RUN_FILE)
        with clock.phase("prepare"):
            tables, images, black_boxes = _prepare(trials, settings, data_cfg, experiment_dir,
                                                   seed)
        clock.carve("prepare", "judge", sum(p.judge_seconds for p in images.values()))
        starts = {}
        if needed_starts(trials):
            with clock.phase("shared starts"):
                starts = grow_shared_starts(trials, {n: p.trial_data for n, p in images.items()},
                                            experiment_dir, seed)
        with clock.phase("ray start"):
            cluster.connect(ray_choice, quiet=not settings.debug)
        cluster.check_storage_shared(store)
        if forced_gpu and not ray_choice.address and not cluster.gpus_available():
            raise ConfigError(f"--gpus-per-trial {settings.gpus_per_trial}: this machine has no "
                              "GPU, so the trials would wait forever; leave the flag out to "
                              "train on CPU")
        store.push()  # the split, judge and settings: --resume works from any machine
    except FarmError:
        if fresh:  # bad input leaves nothing half-written behind
            shutil.rmtree(experiment_dir, ignore_errors=True)
        raise

    use_gpu = cluster.gpus_available() or forced_gpu
    print(f"Growing {len(trials)} trials in {store.home} "
          f"({'GPU' if use_gpu else 'CPU'}); watch with: tensorboard --logdir {_logdir(store)}")
    trial_data = {n: p.trial_data for n, p in {**tables, **images}.items()}
    for n, weights in starts.items():
        trial_data[n] = dataclasses.replace(trial_data[n], starts=weights)
    with clock.phase("trials"):
        outcomes = runner.run_trials(trials, trial_data, store, use_gpu, settings.resume,
                                     quiet=not settings.debug)

    print("Exporting each trial's best epoch and scoring it on the held-out test split")
    with clock.phase("export"):
        summary = _summarise(name, settings, seed, tables, images, outcomes, store,
                             data_cfg, black_boxes)
    with clock.phase("curves"):
        summary["figures"] = _curves(summary["trials"], experiment_dir,
                                     start_pictures(trials, experiment_dir))
    with clock.phase("evaluator"):
        summary["evaluator"] = _evaluate(config, images, summary, store, use_gpu,
                                         verbose=settings.debug)
    # The report is written from the summary, so its own seconds (a few) are not in it.
    summary["phases"] = clock.as_dict()
    summary["phase_use"] = phase_use(
        summary["phases"],
        # a resumed run's trials count time from before it started: no busy share for them
        [] if settings.resume else _trial_work(summary["trials"]),
        cluster.cpus(), _classifier_seconds(summary.get("evaluator")))
    summary["seconds"] = round(time.time() - started, 1)
    summary["disk_bytes"] = store.disk_bytes()  # best-K checkpoints keep this bounded
    _write_json(summary, experiment_dir / "summary.json")
    write_report(experiment_dir)
    store.push()
    print(format_summary(summary, store))
    return summary


def _trial_work(records: list[dict]) -> list[tuple[float, float]]:
    """(Tune seconds, CPUs) of every trial that reported, for `phase_use`."""
    return [(r["train_seconds"], r.get("cpus", 1.0)) for r in records if r.get("train_seconds")]


def _classifier_seconds(section: dict | None) -> float:
    """The evaluator's classifiers' own seconds, over every dataset."""
    datasets = ((section or {}).get("datasets") or {}).values()
    return float(sum(data.get("classifier_seconds") or 0.0 for data in datasets))


def _curves(trials: list[dict], experiment_dir: Path,
            pictures: dict[str, str] | None = None) -> dict[str, str]:
    """Each family's selection metric (usefulness for images) over epochs, kept epochs marked:
    PNGs for the report, and the same pictures in TensorBoard (`curves/<family>`); with them
    `pictures` ({name: PNG}, what each shared start draws), which are already PNGs."""
    import numpy as np
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(experiment_dir / "tensorboard-curves"))
    try:
        figures = write_family_curves(trials, experiment_dir / "figures", writer)
        for name, path in (pictures or {}).items():
            with Image.open(path) as picture:
                writer.add_image(name, np.asarray(picture.convert("RGB")), dataformats="HWC")
        return {**figures, **(pictures or {})}
    finally:
        writer.close()


def _evaluate(config, images, summary, store, use_gpu, verbose=False) -> dict | None:
    """The final evaluator job for every image dataset (tables are scored in `_summarise`);
    `verbose` (--debug): every classifier's step lines and Ray Train's own."""
    if not images:
        return None
    evaluator = evaluator_config(config.get("evaluator"))
    started = time.time()
    section = {"config": asdict(evaluator), "datasets": {}}
    for dataset, prepared in images.items():
        try:
            result = evaluate_image_dataset(dataset, prepared, summary["trials"], evaluator,
                                            store.folder, use_gpu, store.location("evaluator"),
                                            verbose=verbose)
        except FarmError as exc:  # the trials' results stand; say what failed and go on
            print(f"warning: {exc}")
            section.setdefault("errors", {})[dataset] = str(exc)
            continue
        if result is not None:
            section["datasets"][dataset] = result
            section["workers"], section["device"] = result["workers"], result["device"]
    section["seconds"] = round(time.time() - started, 1)
    return section


def _prepare(trials, settings, data_cfg, experiment_dir, seed):
    """Decode, split and encode every dataset the plan needs; the judge and black boxes too."""
    from farm.data.prepare_images import image_root, prepare_images

    by_modality: dict[str, set] = {"table": set(), "image": set()}
    for t in trials:
        by_modality[MODALITY[t["kind"]]].add(t["dataset"])
    names = sorted(by_modality["table"] | by_modality["image"])
    print(f"Preparing {len(names)} dataset(s): {', '.join(names)}")
    tables = prepare_tables(sorted(by_modality["table"]), data_cfg=data_cfg,
                            experiment_dir=experiment_dir, seed=seed, data_dir=settings.data_dir,
                            user_path=settings.tabular_data, user_target=settings.target) \
        if by_modality["table"] else {}
    steered = sorted({t["dataset"] for t in trials if t["kind"] in KINDS_WITH_BLACK_BOX})
    black_boxes = {n: attach_black_box(tables[n], seed) for n in steered}
    images = {n: prepare_images(n, image_root(n, settings.data_dir, settings.image_data),
                                data_cfg, experiment_dir, seed, verbose=settings.debug)
              for n in sorted(by_modality["image"])}
    return tables, images, black_boxes


def _summarise(name, settings, seed, tables, images, outcomes, store, data_cfg,
               black_boxes) -> dict:
    experiment_dir = store.folder
    datasets = {}
    for dataset, p in tables.items():
        datasets[dataset] = {
            "kind": "table", "source": str(Path(p.table.path).resolve()),
            "sha256": p.source_sha256, "target": p.table.target,
            "rows": len(p.table.frame), "dropped_rows": p.table.dropped_rows,
            "classes": class_counts(p.table.labels),
            "split": {"manifest": str(experiment_dir / "splits" / f"{dataset}.json"),
                      "fit": len(p.split.fit), "val": len(p.split.val), "test": len(p.split.test)},
            "trtr": trtr(p, seed),
            "smote": smote_baseline(p, _synthetic_rows(data_cfg, p), seed),
        }
        if dataset in black_boxes:
            report = black_boxes[dataset]
            datasets[dataset]["black_box"] = {
                "model": f"random forest, 100 trees, trained on the {report['fitted_on']} rows",
                "fitted_on": report["fitted_on"],
                "positive_class": report["positive_class"], "test_accuracy": report["accuracy"],
                "test_auc": report["auc"],
                "figures": write_black_box_figures(report, experiment_dir / "figures" / dataset)}
    for dataset, p in images.items():
        datasets[dataset] = {
            "kind": "image", "images": len(p.images), "classes": list(p.images.classes),
            "sha256": p.source_sha256,
            "split": {"manifest": str(experiment_dir / "splits" / f"{dataset}.json"),
                      "train": len(p.split.train), "fit": len(p.split.fit),
                      "val": len(p.split.val), "test": len(p.split.test)},
            "judge": {"checkpoint": str(p.judge_path), "test_accuracy": p.judge_test_accuracy,
                      "chance": 1 / len(p.images.classes)},
        }
    trials = []
    for outcome in sorted(outcomes, key=lambda o: o.spec["index"]):
        spec = outcome.spec
        entry = {"family": spec["family"], "dataset": spec["dataset"], "class": spec.get("class"),
                 "trial": Path(outcome.path).name,
                 "setting": spec["tag"], "variant": spec.get("variant"),
                 "params": spec["params"], "seed": spec["seed"],
                 "status": "error" if outcome.error else "ok", "error": outcome.error,
                 "best_epoch": outcome.best_epoch, "last_epoch": outcome.last_epoch,
                 "epochs": spec["epochs"], "train_seconds": outcome.train_seconds,
                 "cpus": float(spec["resources"].get("cpu", 1)),
                 "select_metric": spec["select"]["metric"],
                 "select_mode": spec["select"]["mode"],
                 "metrics": outcome.best_metrics, "checkpoint": outcome.checkpoint_path,
                 "trial_dir": outcome.path}
        if spec.get("exploits"):  # PBT: the epochs at which it took another trial's weights
            entry["exploits"] = spec["exploits"]
        if outcome.checkpoint_path and spec["dataset"] in tables:
            entry.update(_export_table(spec, outcome, tables[spec["dataset"]], entry["trial"],
                                       experiment_dir, data_cfg, seed))
        elif outcome.checkpoint_path:
            entry.update(_export_images(spec, outcome, images[spec["dataset"]], entry["trial"],
                                        experiment_dir, data_cfg))
        trials.append(entry)
    _mark_chosen_tables(trials, tables)
    for dataset in tables:
        _write_json({"dataset": dataset, "files": [
            {"file": Path(t["synthetic_csv"]).name, **t["provenance"]}
            for t in trials if t["dataset"] == dataset and t.get("synthetic_csv")]},
            experiment_dir / "synthetic" / dataset / "manifest.json")
    return {"version": SUMMARY_VERSION, "name": name, "preset": settings.preset,
            "commit": _code_commit(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seed": seed, "experiment_dir": str(experiment_dir), "storage": store.home,
            "datasets": datasets, "trials": trials}


def _code_commit() -> str | None:
    """The farm's git commit when it runs from a checkout (a result names the code it came
    from); None when git or the checkout is not there."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _mark_chosen_tables(trials: list[dict], tables) -> None:
    """Per (family, dataset), the trial with the best selection metric (validation data, never
    the test split) is the one the headline reports. Where families of a dataset are selected
    by the same metric (tabular-a and tabular-forest: `select/score`), the best of their chosen
    trials is also the farm's `pick` for that table: its choice among generator kinds."""
    groups: dict[tuple, list] = {}
    for t in trials:
        if t["dataset"] in tables and t["status"] == "ok" and t.get("synthetic_csv"):
            groups.setdefault((t["family"], t["dataset"]), []).append(t)
        if t["dataset"] in tables:
            t["chosen"] = t["pick"] = False
    rivals: dict[tuple, list] = {}
    for group in groups.values():
        best = max(group, key=selection_value)
        best["chosen"] = True
        rivals.setdefault((best["dataset"], best["select_metric"], best["select_mode"]),
                          []).append(best)
    for same in rivals.values():
        if len(same) > 1:
            max(same, key=selection_value)["pick"] = True


def _synthetic_rows(data_cfg: dict, p) -> int:
    """How many rows an exported table holds: `data.tables.synthetic_rows`, else as many as the
    real train split."""
    return int(data_cfg.get("tables", {}).get("synthetic_rows", 0)) or len(p.split.train)


def _export_table(spec, outcome, p, trial, experiment_dir, data_cfg, seed) -> dict:
    rows = _synthetic_rows(data_cfg, p)
    generator, synthetic = sample_from_checkpoint(spec, outcome.checkpoint_path, p.trial_data, rows)
    csv = experiment_dir / "synthetic" / spec["dataset"] / f"{trial}.csv"
    write_csv_atomic(synthetic, csv)
    figures = write_trial_figures(spec, generator, p, synthetic,
                                  experiment_dir / "figures" / trial, Path(outcome.path))
    about = provenance({"trial": trial, "family": spec["family"], "setting": spec["tag"],
                        "dataset": spec["dataset"], "checkpoint": outcome.checkpoint_path,
                        "best_epoch": outcome.best_epoch, "seed": spec["seed"]}, spec, rows)
    return {"synthetic_csv": str(csv), "tstr": tstr(synthetic, p, seed),
            "real_plus_synthetic": real_plus_synthetic(synthetic, p, seed),
            "field": field_scores(synthetic, p, seed), "figures": figures,
            "provenance": about}


def _export_images(spec, outcome, p, trial, experiment_dir, data_cfg) -> dict:
    images_cfg = data_cfg.get("images", {})
    per_class = int(images_cfg.get("synthetic_per_class", 32))
    by_class, kept, draws = draw_images(spec, outcome.checkpoint_path, p.trial_data, per_class,
                                        int(images_cfg.get("judge_filter", 1)))
    folder = experiment_dir / "synthetic" / spec["dataset"] / "trials" / trial
    about = provenance({"trial": trial, "family": spec["family"], "setting": spec["tag"],
                        "dataset": spec["dataset"], "checkpoint": outcome.checkpoint_path,
                        "best_epoch": outcome.best_epoch, "seed": spec["seed"]}, spec, draws)
    if kept is not None:
        about["kept"] = f"the {per_class} of {draws} the judge finds most like their class"
    write_image_folder(by_class, folder, about, kept)
    return {"synthetic_dir": str(folder), "synthetic_images": sum(map(len, by_class.values())),
            "pools": []}


def _logdir(store: Store) -> str:
    """What TensorBoard reads during the run: the folder, or the bucket without pyarrow's
    options (TensorBoard reads s3:// itself, with boto3 and S3_ENDPOINT for another endpoint)."""
    return store.home.partition("?")[0]


def _write_json(data: dict, path: Path) -> None:
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str))

