"""`tabular-forest`: Forest-Flow (farm.models.forest_flow), gradient-boosted trees grown by
flow matching, as a farm family beside the GANs, so that the farm chooses among generator kinds
for a table by the same validation score (issue 22: on diabetes Forest-Flow beat the farm's GAN
on utility and detection).

Data: the encoded `fit` rows, mapped from the transformer's [0, 1] to Forest-Flow's [-1, 1];
with `per_class`, a model per class of the target. Model: one XGBoost regressor per noise level
(and class). Epoch: `rounds_per_epoch` more boosting rounds for every regressor, no GAN step;
metrics and selection are tabular-a's (`report_on`, `selection_score`), so the kept epoch is
the best number of rounds on the val slice, and trials of both kinds compare. Settings:
ForestParams (farm/config/family_params.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from farm.config.family_params import ForestParams
from farm.data.trial_data import TabularData
from farm.families.tabular_a import report_on, selection_score
from farm.gan.gan_loop import GanPair
from farm.models.forest_flow import FlowProblems, ForestFlow, booster_params


def class_codes(data: TabularData) -> np.ndarray:
    """Each fit row's class of the target (index into its one-hot block)."""
    block = data.transformer.block(data.target)
    return data.fit_enc[:, block.start:block.stop].argmax(axis=1)


def _counts(params: ForestParams, data: TabularData) -> list[int]:
    if not params.per_class:
        return [len(data.fit_enc)]
    block = data.transformer.block(data.target)
    return np.bincount(class_codes(data), minlength=block.stop - block.start).tolist()


def build(params: ForestParams, data: TabularData, device: torch.device) -> GanPair:
    """The forest as the pair's generator; no discriminator and no optimizers (nothing here
    is trained by gradients)."""
    forest = ForestFlow(data.transformer.width, params.n_t, _counts(params, data))
    return GanPair(forest, nn.Module(), None, None)


def real_rows(data: TabularData, device: torch.device) -> torch.Tensor:
    return torch.tensor(data.fit_enc, dtype=torch.float32, device=device)


class ForestGame:
    """The flow-matching regressions of one trial, built from its seed (a resumed trial builds
    the same ones again), and how many rounds an epoch adds."""

    def __init__(self, params: ForestParams, data: TabularData, seed: int):
        labels = class_codes(data) if params.per_class else None
        self.problems = FlowProblems(2.0 * data.fit_enc - 1.0, labels, params.n_t,
                                     params.duplicate_k, seed, params.max_bin)
        self.rounds, self.xgb = params.rounds_per_epoch, booster_params(
            params.max_depth, params.eta, seed, params.multi_strategy, params.max_bin,
            min_child_weight=max(1.0, params.min_leaf_rows * params.duplicate_k))


def game(params: ForestParams, data: TabularData, pair: GanPair,
         device: torch.device) -> ForestGame:
    """The trial's regressions, their noise seeded from torch's stream: the trainable seeds it
    with the trial's seed just before, so a resumed trial draws the same noise again."""
    return ForestGame(params, data, int(torch.randint(0, 2**31 - 1, ()).item()))


def epoch(pair: GanPair, game: ForestGame, number: int) -> dict:
    """One epoch: `rounds_per_epoch` boosting rounds for every regressor; its training loss
    (mean squared velocity error) as a 0-dim tensor, as a GAN epoch's stats are."""
    return {"loss/flow": torch.tensor(game.problems.grow(pair.generator, game.rounds, game.xgb))}


@torch.no_grad()
def sample_frame(forest: ForestFlow, params: ForestParams, data: TabularData, n: int, seed: int,
                 rng: torch.Generator | None = None) -> pd.DataFrame:
    """Decoded synthetic rows in the original schema from a seeded stream (or the next draws of
    `rng`): each row's class in the training proportions, then its noise."""
    gen = rng if rng is not None else torch.Generator().manual_seed(seed)
    labels = torch.multinomial(forest.class_probs.float(), n, replacement=True, generator=gen)
    rows = forest(torch.randn(n, forest.width, generator=gen), labels).numpy()
    encoded = (rows + 1.0) / 2.0
    if params.per_class:  # each row is its class's: the target block says so exactly
        block = data.transformer.block(data.target)
        encoded[:, block.start:block.stop] = np.eye(block.stop - block.start)[labels.numpy()]
    return data.transformer.inverse_transform(encoded)


def evaluate(forest: ForestFlow, params: ForestParams, data: TabularData, seed: int) -> dict:
    """tabular-a's metrics (fit rows and val slice; never the test split) and its score."""
    n = params.eval_rows or len(data.fit_frame)
    metrics = report_on(sample_frame(forest, params, data, n, seed), params, data, seed)
    metrics["select/score"] = selection_score(metrics, params.privacy_floor)
    metrics["rounds"] = forest.rounds  # boosting rounds so far: what an epoch means here
    return metrics
