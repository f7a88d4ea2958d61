"""The peers `tabular_quality.py` fits beside the farm, each a function of the prepared split.

* CTGAN and TVAE (SDV's `ctgan` package) at their defaults;
* SMOTE used as a generator (the farm's own baseline, farm/evaluation/smote_baseline.py:
  imbalanced-learn's SMOTENC, 5 neighbours), TabDDPM's baseline;
* Forest-Flow (`ForestDiffusion`, Jolicoeur-Martineau et al., AISTATS 2024): flow matching with
  one XGBoost model per noise level, no GPU. Its package defaults are n_t 50 and duplicate_K 100;
  `duplicate_K` sets how many noised copies of each row the trees fit, and the time scales with
  it. One thread (the farm's other core is someone else's).

Every peer trains on the real train split (fit + val) and samples as many rows.
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from functools import partial

import numpy as np
import pandas as pd

from farm.data.prepare_tables import PreparedTable
from farm.evaluation.smote_baseline import smote_rows

PEERS = ("CTGAN", "TVAE", "SMOTE", "Forest-Flow")


def _nominal(prepared: PreparedTable) -> list[str]:
    nominal = list(prepared.table.nominal)
    return nominal + ([prepared.table.target] if prepared.table.target not in nominal else [])


def fit_ctgan(kind: str, prepared: PreparedTable, seed: int, epochs: int | None,
              notes: set[str]) -> pd.DataFrame:
    import ctgan
    import torch

    train = prepared.train_frame()
    cls = {"CTGAN": ctgan.CTGAN, "TVAE": ctgan.TVAE}[kind]
    np.random.seed(seed)
    torch.manual_seed(seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = cls() if epochs is None else cls(epochs=epochs)
        model.set_random_state(seed)
        model.fit(train, discrete_columns=_nominal(prepared))
        synthetic = model.sample(len(train))
    for w in caught:
        notes.add(f"{kind}: {w.category.__name__}: {str(w.message).splitlines()[0][:200]}")
    return synthetic


def fit_smote(prepared: PreparedTable, seed: int) -> pd.DataFrame:
    train = prepared.train_frame()
    return smote_rows(train, prepared.table.target, list(prepared.table.nominal), len(train), seed)


@contextmanager
def quantile_bins(max_bin: int):
    """ForestDiffusion 1.0.6 passes extra XGBoost kwargs (`max_bin`) to the booster but builds
    its QuantileDMatrix with XGBoost's default 256 bins, and XGBoost refuses the mismatch; so
    while it trains (nothing else runs then), XGBoost's QuantileDMatrix takes `max_bin` too."""
    import xgboost

    original = xgboost.QuantileDMatrix
    xgboost.QuantileDMatrix = partial(original, max_bin=max_bin)
    try:
        yield
    finally:
        xgboost.QuantileDMatrix = original


def fit_forest_flow(prepared: PreparedTable, seed: int, n_t: int, duplicate_k: int,
                    n_jobs: int = 1, max_bin: int = 256) -> pd.DataFrame:
    """Nominal columns as integer codes (`cat_indexes` when 3 or more categories, else
    `bin_indexes`), integer columns as `int_indexes`, the target as `label_y` (one model per
    class, as its paper does for classification tables). `n_jobs` 1 (the default) fits one
    multi-output XGBoost per noise level and class; more jobs make ForestDiffusion fit one model
    per column instead (another algorithm, not just faster), so the bench keeps 1 unless asked."""
    from ForestDiffusion import ForestDiffusionModel

    train = prepared.train_frame()
    target = prepared.table.target
    X = train.drop(columns=[target])
    vocabulary, cat, binary, integer = {}, [], [], []
    for i, c in enumerate(X.columns):
        if c in set(prepared.table.nominal):
            X[c], vocabulary[c] = pd.factorize(X[c])
            (cat if len(vocabulary[c]) >= 3 else binary).append(i)
        elif pd.api.types.is_integer_dtype(train[c]):
            integer.append(i)
    labels, classes = pd.factorize(train[target])
    with quantile_bins(max_bin):  # the model trains in its constructor
        model = ForestDiffusionModel(X.to_numpy(dtype=np.float64), label_y=labels, n_t=n_t,
                                     duplicate_K=duplicate_k, cat_indexes=cat,
                                     bin_indexes=binary, int_indexes=integer,
                                     diffusion_type="flow", n_jobs=n_jobs, seed=seed,
                                     max_bin=max_bin)  # an XGBoost kwarg it passes on
    # ForestDiffusion 1.0.6 rounds integer columns in place in `clip_extremes`, on the read-only
    # array pandas 3 hands back from `clean_onehot_data`: give it a writable copy
    clean = model.clean_onehot_data
    model.clean_onehot_data = lambda values: np.array(clean(values), dtype=np.float64)
    out = model.generate(batch_size=len(train))
    rows = pd.DataFrame(out[:, :-1], columns=X.columns)
    for c in X.columns:
        if c in vocabulary:
            codes = np.clip(np.round(rows[c]).astype(int), 0, len(vocabulary[c]) - 1)
            rows[c] = vocabulary[c][codes]
        elif pd.api.types.is_integer_dtype(train[c]):
            rows[c] = np.round(rows[c]).astype(train[c].dtype)
    rows[target] = classes[np.round(out[:, -1]).astype(int)]
    return rows[list(train.columns)]


def duplicate_ks(text: str) -> dict[str, int]:
    """`--forest-flow-k`: "20" for every dataset, or "diabetes=100,german_credit=20" (a dataset
    left out takes Forest-Flow's default, 100)."""
    if "=" not in text:
        return {"*": int(text)}
    pairs = [item.split("=", 1) for item in text.split(",") if item]
    return {"*": 100, **{name.strip(): int(k) for name, k in pairs}}


def duplicate_k(args, dataset: str) -> int:
    return args.forest_flow_k.get(dataset, args.forest_flow_k["*"])


def fit(kind: str, prepared: PreparedTable, seed: int, args, notes: set[str], dataset: str):
    """(synthetic rows in the table's schema, seconds to fit and sample)."""
    started = time.time()
    if kind in ("CTGAN", "TVAE"):
        synthetic = fit_ctgan(kind, prepared, seed, args.ctgan_epochs, notes)
    elif kind == "SMOTE":
        synthetic = fit_smote(prepared, seed)
    elif kind == "Forest-Flow":
        synthetic = fit_forest_flow(prepared, seed, args.forest_flow_nt,
                                    duplicate_k(args, dataset), args.forest_flow_jobs,
                                    getattr(args, "forest_flow_bins", 256))
    else:
        raise ValueError(f"unknown peer {kind!r} (one of {', '.join(PEERS)})")
    return synthetic, time.time() - started
