"""Forest-Flow (Jolicoeur-Martineau, Fatras & Kachman, AISTATS 2024): flow matching in which
the velocity field is a set of gradient-boosted trees, one XGBoost model per noise level (and
per class), instead of a neural network. It matched real-data utility on small tables without
a GPU (shared/ANCHORS.md), which is what the farm's tabular users have.

Training: the real rows x1, scaled to [-1, 1] and duplicated `duplicate_k` times, are paired
with Gaussian noise x0 drawn once; at each level t of `n_t` evenly spaced in [eps, 1], a
multi-output regressor learns x_t = t x1 + (1 - t) x0  ->  x1 - x0. Sampling integrates
dx/dt = v_t(x) from noise with Euler steps, as the reference code (`ForestDiffusion` 1.0.6,
`diffusion_type='flow'`) does; its last level (t = 1) is never read there, so it is not grown
here. With classes, every class gets its own models and rows are drawn per class in the
training proportions (its `label_y`).

The boosters grow in rounds (`FlowProblems.grow`), so a trial can report and checkpoint after
every few rounds and the farm can keep the best number of rounds, as it keeps a GAN's best
epoch. The module holds the boosters as uint8 tensors in its state dict, so a checkpoint loads
with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import numpy as np
import torch
import xgboost as xgb
from torch import nn

EPS = 1e-3  # the first noise level, as in the reference code


def levels(n_t: int) -> np.ndarray:
    """The noise levels a model is grown at: all of the reference's but the last (t = 1)."""
    return np.linspace(EPS, 1.0, n_t)[:-1]


def booster_params(max_depth: int, eta: float, seed: int,
                   multi_strategy: str = "one_output_per_tree", max_bin: int = 256,
                   min_child_weight: float = 1.0) -> dict:
    """The reference's XGBoost settings (no L1/L2 penalty), one thread: the farm runs one
    trial per core. `multi_strategy` multi_output_tree grows one vector-leaf tree per round
    for all columns instead of one tree per column. `min_child_weight` (XGBoost's default 1)
    is the least training rows a leaf holds under squared error: larger leaves average over
    more real rows, so samples sit less close to any one of them."""
    return {"objective": "reg:squarederror", "tree_method": "hist", "max_depth": max_depth,
            "eta": eta, "reg_lambda": 0.0, "reg_alpha": 0.0, "seed": seed, "nthread": 1,
            "multi_strategy": multi_strategy, "max_bin": max_bin,
            "min_child_weight": min_child_weight}


class ForestFlow(nn.Module):
    """A grown Forest-Flow: rows in [-1, 1] from Gaussian noise. `class_counts`: the training
    rows of each class (one entry for an unconditional model), which set how often a class is
    drawn."""

    def __init__(self, width: int, n_t: int, class_counts):
        super().__init__()
        if n_t < 2:
            raise ValueError(f"n_t must be at least 2 (got {n_t})")
        self.width, self.n_t = int(width), int(n_t)
        counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
        # no rows (a sampler's stand-in dataset): uniform until the state dict loads its own
        self.register_buffer("class_probs", counts / counts.sum() if counts.sum() > 0
                             else torch.full_like(counts, 1 / len(counts)))
        self.boosters: list[list[xgb.Booster | None]] = [
            [None] * (n_t - 1) for _ in range(len(counts))]

    @property
    def classes(self) -> int:
        return len(self.class_probs)

    @property
    def rounds(self) -> int:
        """Boosting rounds every model has taken (0 before the first)."""
        grown = [row[0] for row in self.boosters if row[0] is not None]
        return grown[0].num_boosted_rounds() if grown else 0

    # the boosters as bytes in the state dict (torch.save / weights_only load / load_state_dict)
    def get_extra_state(self) -> dict:
        return {"boosters": [[torch.empty(0, dtype=torch.uint8) if b is None else
                              torch.frombuffer(bytearray(b.save_raw("ubj")), dtype=torch.uint8)
                              for b in row] for row in self.boosters]}

    def set_extra_state(self, state: dict) -> None:
        rows = state["boosters"]
        if len(rows) != self.classes or any(len(row) != self.n_t - 1 for row in rows):
            raise RuntimeError(f"the state holds {len(rows)} classes x "
                               f"{len(rows[0]) if rows else 0} levels, the model "
                               f"{self.classes} x {self.n_t - 1}")
        self.boosters = [[_booster(raw) for raw in row] for row in rows]

    @torch.no_grad()
    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Rows [n, width] in [-1, 1] from noise z [n, width]; `labels` [n] picks each row's
        class models (all 0 when unconditional)."""
        if not self.rounds:
            raise RuntimeError("the forest has not been grown yet")
        x = z.detach().cpu().double().numpy().copy()
        which = np.zeros(len(x), dtype=np.int64) if labels is None else labels.cpu().numpy()
        step = 1.0 / (self.n_t - 1)
        for c in range(self.classes):
            rows = which == c
            if not rows.any():
                continue
            xc = x[rows]
            for level in range(self.n_t - 1):
                xc = xc + step * self.boosters[c][level].inplace_predict(
                    xc.astype(np.float32)).reshape(len(xc), self.width)
            x[rows] = xc
        return torch.from_numpy(np.clip(x, -1.0, 1.0)).float().to(z.device)


def _booster(raw: torch.Tensor) -> xgb.Booster | None:
    if raw.numel() == 0:
        return None
    booster = xgb.Booster()
    booster.load_model(bytearray(raw.numpy().tobytes()))
    return booster


class FlowProblems:
    """The regressions a ForestFlow learns, built once from the real rows (in [-1, 1]) and a
    seed: per class and level, the inputs x_t and targets x1 - x0 as XGBoost matrices."""

    def __init__(self, rows: np.ndarray, labels: np.ndarray | None, n_t: int, duplicate_k: int,
                 seed: int, max_bin: int = 256):
        if duplicate_k < 1:
            raise ValueError(f"duplicate_k must be at least 1 (got {duplicate_k})")
        rng = np.random.default_rng(seed)
        labels = np.zeros(len(rows), dtype=np.int64) if labels is None else np.asarray(labels)
        self.class_counts = np.bincount(labels).tolist()
        self.matrices: list[list[xgb.DMatrix]] = []
        for c in range(len(self.class_counts)):
            if not self.class_counts[c]:  # a class code with no rows: never drawn
                self.matrices.append([])
                continue
            x1 = np.tile(rows[labels == c], (duplicate_k, 1))
            x0 = rng.standard_normal(x1.shape)
            target = (x1 - x0).astype(np.float32)
            self.matrices.append([
                xgb.QuantileDMatrix((t * x1 + (1 - t) * x0).astype(np.float32), label=target,
                                    max_bin=max_bin)
                for t in levels(n_t)])

    def grow(self, model: ForestFlow, rounds: int, params: dict) -> float:
        """`rounds` more boosting rounds for every model of `model`; returns the mean squared
        error of the velocity over every level's training rows after them."""
        errors = []
        for c, row in enumerate(self.matrices):
            for level, matrix in enumerate(row):
                booster = model.boosters[c][level]
                if booster is None:
                    booster = model.boosters[c][level] = xgb.Booster(params, [matrix])
                else:  # a saved model keeps its trees, not its training settings
                    booster.set_param(params)
                # rounds on the same booster and matrix: XGBoost keeps the matrix's predictions
                # cached, where xgb.train(xgb_model=...) copies the model and predicts every
                # earlier tree again
                for _ in range(rounds):
                    booster.update(matrix, booster.num_boosted_rounds())
                errors.append(float(booster.eval(matrix).split(":")[-1]) ** 2)
        return float(np.mean(errors))
