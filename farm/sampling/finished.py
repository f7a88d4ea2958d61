"""A finished experiment, opened for reuse: its trials as a table, and any trial's generator.

`open_experiment("results/NAME")`, or a bucket URI (`s3://bucket/prefix/NAME`) read as
`--resume` reads one: only the files a reader needs (summary, settings, a split manifest, one
checkpoint) come down into the local copy. `generator(family=..., dataset=...)` defaults to the
trial the summary chose for that family and dataset (tables: its `chosen` trial; images: the
one with the best selection metric, by the same rule), and builds it from the trial's kept
checkpoint. A table's decoding is fitted on the experiment's own `fit` rows, so the table must
be at hand as for `--resume` (its checksum is checked against the split manifest); tabular-b's
black box is trained again exactly as the driver trained it. Images need only the class names.
A generator saved from here (`Generator.save`) carries all of that and needs nothing more.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from farm.infra.errors import ConfigError, DataError
from farm.infra.storage import Store, is_uri, parent

SUMMARY, RUN = "summary.json", "run.json"


def open_experiment(location: str | os.PathLike, data_dir: str | None = None) -> "Experiment":
    """A finished experiment at a folder (`results/NAME`) or a URI (`s3://bucket/prefix/NAME`).
    `data_dir` is where its tables are, when not where the run found them."""
    location = str(location)
    if is_uri(location):
        name, storage = urlsplit(location).path.rstrip("/").rpartition("/")[2], parent(location)
    else:
        path = Path(location).expanduser()
        name, storage = path.name, str(path.parent)
    if not name:
        raise ConfigError(f"{location}: name the experiment's folder, e.g. results/NAME")
    return Experiment(Store.open(storage, name), data_dir)


def selection_value(trial: dict) -> float:
    """The trial's selection metric, oriented so that larger is better; NaN/missing last."""
    value = trial["metrics"].get(trial["select_metric"])
    if value is None or value != value:
        return float("-inf")
    return -value if trial["select_mode"] == "min" else value


def _listing(names) -> str:
    names = list(dict.fromkeys(str(n) for n in names))
    return ", ".join(names[:10]) + (f" ... ({len(names)} in all)" if len(names) > 10 else "")


class Experiment:
    """`summary.json` and `run.json` of one finished experiment, and the trials' generators."""

    def __init__(self, store: Store, data_dir: str | None = None):
        self.store, self.data_dir = store, data_dir
        if not store.exists(SUMMARY):
            raise DataError("no summary.json: not a finished experiment", where=store.public)
        store.pull_files([SUMMARY, RUN])
        self.summary, self.run = self._json(SUMMARY), self._json(RUN)
        self._tables: dict = {}

    def _json(self, relative: str) -> dict:
        path = self.store.folder / relative
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise DataError(f"no {relative} (an experiment made before it was written)",
                            where=self.store.public) from None
        except (OSError, ValueError) as exc:
            raise DataError(f"unreadable {relative} ({exc})", where=self.store.public) from None

    @property
    def name(self) -> str:
        return self.summary["name"]

    @property
    def trials(self):
        """Every trial of the summary, one row each (see docs/summary.md)."""
        import pandas as pd

        return pd.DataFrame(self.summary["trials"])

    def __repr__(self) -> str:
        return f"Experiment({self.store.public!r}, {len(self.summary['trials'])} trials)"

    # ------------------------------------------------------------------ choosing a trial

    def trial(self, trial: str | None = None, family: str | None = None,
              dataset: str | None = None, class_name: str | None = None) -> dict:
        """The summary's entry of a trial by name, or the chosen one of a family and dataset
        (and class, for a family that grows one trial per class)."""
        entries = self.summary["trials"]
        if trial is not None:
            if family is not None or dataset is not None:
                raise ConfigError("name a trial, or a family and dataset, not both")
            found = [t for t in entries if t["trial"] == trial]
            if not found:
                raise ConfigError(f"no trial {trial!r} in experiment {self.name}; its trials: "
                                  f"{_listing(t['trial'] for t in entries)}")
            return _usable(found[0])
        if family is None:
            raise ConfigError("name a trial, or a family (and its dataset)")
        mine = [t for t in entries if t["family"] == family]
        if not mine:
            raise ConfigError(f"experiment {self.name} grew no family {family!r}; it grew "
                              f"{_listing(t['family'] for t in entries)}")
        datasets = list(dict.fromkeys(t["dataset"] for t in mine))
        if dataset is None and len(datasets) > 1:
            raise ConfigError(f"family {family!r} grew on {_listing(datasets)}; name the dataset")
        dataset = datasets[0] if dataset is None else dataset
        mine = [t for t in mine if t["dataset"] == dataset]
        if not mine:
            raise ConfigError(f"family {family!r} grew on {_listing(datasets)}, not on "
                              f"{dataset!r}")
        if any(t.get("class") for t in mine):  # one trial per class
            classes = list(dict.fromkeys(t["class"] for t in mine))
            if class_name is None and len(classes) > 1:
                raise ConfigError(f"family {family!r} grows one trial per class "
                                  f"({_listing(classes)}); name the class")
            class_name = classes[0] if class_name is None else class_name
            mine = [t for t in mine if t["class"] == class_name]
            if not mine:
                raise ConfigError(f"family {family!r} grew no trial for class {class_name!r}; "
                                  f"its classes: {_listing(classes)}")
        ok = [t for t in mine if t["status"] == "ok" and t.get("checkpoint")]
        if not ok:
            raise ConfigError(f"every trial of family {family!r} on {dataset!r} failed; none "
                              "kept a checkpoint")
        chosen = [t for t in ok if t.get("chosen")]
        return chosen[0] if chosen else max(ok, key=selection_value)

    # ------------------------------------------------------------------ its generator

    def generator(self, trial: str | None = None, family: str | None = None,
                  dataset: str | None = None, class_name: str | None = None):
        """The trial's generator at its kept epoch (farm.sampling.generators.Generator)."""
        from farm.sampling.generators import Generator, image_data

        entry = self.trial(trial, family, dataset, class_name)
        checkpoint = f"tune/{entry['trial']}/{Path(entry['checkpoint']).name}"
        kind = self.run["config"]["families"][entry["family"]]["kind"]
        about = {"experiment": self.store.public, "trial": entry["trial"],
                 "family": entry["family"], "setting": entry["setting"],
                 "dataset": entry["dataset"], "class": entry.get("class"),
                 "epoch": entry["best_epoch"], "seed": entry["seed"], "checkpoint": checkpoint}
        dataset = entry["dataset"]
        if self.summary["datasets"][dataset]["kind"] == "table":
            data, forest = self._table(dataset, steered=kind == "tabular-b")
        else:
            size = (self.run["config"]["data"].get("images") or {}).get("size", 64)
            data = image_data(dataset, self.summary["datasets"][dataset]["classes"], size)
            forest = None
        spec = {"kind": kind, "params": entry["params"], "about": about, "data": data}
        return Generator(spec, self._weights(checkpoint), forest)

    def _weights(self, checkpoint: str) -> dict:
        import torch

        relative = f"{checkpoint}/state.pt"
        self.store.pull_files([relative])
        path = self.store.folder / relative
        if not path.is_file():
            raise DataError("the trial's kept checkpoint is not there", where=path)
        return torch.load(path, map_location="cpu", weights_only=True)["generator"]

    def _table(self, dataset: str, steered: bool):
        """The table's decoding (and for tabular-b its black box) as the run had them: the
        data split again by the experiment's own manifest, the forest trained again on the
        rows the run's was (summary.json says which) with the run's seed, as the driver did."""
        from farm.data.prepare_tables import attach_black_box, prepare_tables
        from farm.sampling.generators import table_data

        seed = int(self.summary["seed"])
        if dataset not in self._tables:
            manifest = f"splits/{dataset}.json"
            self.store.pull_files([manifest])
            if not (self.store.folder / manifest).is_file():
                raise DataError(f"no {manifest}: the experiment's split is missing",
                                where=self.store.public)
            settings = self.run["settings"]
            self._tables[dataset] = prepare_tables(
                [dataset], data_cfg=self.run["config"]["data"], experiment_dir=self.store.folder,
                seed=seed, data_dir=self.data_dir or settings.get("data_dir"),
                user_path=settings.get("tabular_data"), user_target=settings.get("target"),
            )[dataset]
        prepared = self._tables[dataset]
        data = prepared.trial_data
        if steered and data.black_box is None:  # on the rows the run's forest learned from
            box_report = (self.summary.get("datasets", {}).get(dataset) or {}).get("black_box")
            attach_black_box(prepared, seed, (box_report or {}).get("fitted_on", "train"))
        box = data.black_box if steered else None
        return (table_data(dataset, data.transformer, data.target, box),
                box.forest if box else None)


def _usable(entry: dict) -> dict:
    if entry["status"] != "ok" or not entry.get("checkpoint"):
        raise ConfigError(f"trial {entry['trial']!r} failed in that experiment and kept no "
                          f"checkpoint ({entry.get('error') or 'no error recorded'})")
    return entry
