"""`tabular-a`: the tabular report's part A, an MLP GAN over the encoded rows of one table.

Data: the encoded `fit` rows. Models: `farm.models.tabular`. Metric: fidelity, detection,
utility on the `val` slice and distance to closest record of decoded-then-re-encoded samples,
so the numbers describe exactly the rows a user gets. Settings: TabularParams
(farm/config/family_params.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from farm.config.family_params import TabularParams
from farm.data.trial_data import TabularData
from farm.gan.gan_loop import GanPair, RealVsFake, Tricks
from farm.gan.stacked import StackedRealVsFake
from farm.metrics.tabular import tabular_report
from farm.models.tabular import MLPDiscriminator, MLPGenerator


def build(params: TabularParams, data: TabularData, device: torch.device) -> GanPair:
    width = data.fit_enc.shape[1]
    G = MLPGenerator(params.noise_dim, width, params.g_hidden, params.leaky_slope, params.g_output,
                     nominal_blocks=data.transformer.nominal_blocks(), gumbel_tau=params.gumbel_tau,
                     batchnorm=params.g_batchnorm)
    D = MLPDiscriminator(width, params.d_hidden, params.leaky_slope, params.minibatch_features,
                         dropout=params.d_dropout, pack=params.pack)
    G, D = G.to(device), D.to(device)
    betas = (params.beta1, params.beta2)
    return GanPair(G, D, torch.optim.Adam(G.parameters(), params.lr_g, betas=betas),
                   torch.optim.Adam(D.parameters(), params.lr_d, betas=betas))


def real_rows(data: TabularData, device: torch.device) -> torch.Tensor:
    return torch.tensor(data.fit_enc, dtype=torch.float32, device=device)


def game(params: TabularParams, data: TabularData, pair: GanPair,
         device: torch.device) -> RealVsFake:
    return RealVsFake(pair.discriminator, lambda n: sample_inputs(params, n, device),
                      tricks(params))


def gang_game(params: TabularParams, data: TabularData, pair: GanPair, members: int,
              device: torch.device) -> StackedRealVsFake:
    """The same game for a gang of stacked trials: each member draws its own noise rows."""
    return StackedRealVsFake(
        pair.discriminator,
        lambda n: (torch.randn(members, n, params.noise_dim, device=device),), tricks(params))


def tricks(params: TabularParams) -> Tricks:
    return Tricks(params.real_label, params.flip_every, params.flip_fraction,
                  params.instance_noise, params.loss, params.gradient_penalty)


def sample_inputs(params: TabularParams, n: int, device: torch.device,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor]:
    return (torch.randn(n, params.noise_dim, device=device, generator=generator),)


@torch.no_grad()
def sample_frame(G: torch.nn.Module, params: TabularParams, data: TabularData, n: int,
                 seed: int, rng: torch.Generator | None = None) -> pd.DataFrame:
    """Decoded synthetic rows in the original schema, from a seeded noise batch (or the next
    draws of `rng`, so that a long sample made in blocks is one noise stream)."""
    G.eval()
    device = next(G.parameters()).device
    gen = rng if rng is not None else torch.Generator(device=device).manual_seed(seed)
    encoded = G(*sample_inputs(params, n, device, gen)).float().cpu().numpy()
    return data.transformer.inverse_transform(encoded)


def evaluate(G: torch.nn.Module, params: TabularParams, data: TabularData, seed: int) -> dict:
    """Metrics against train data only (fit rows, val slice); never the test split."""
    n = params.eval_rows or len(data.fit_frame)
    metrics = report_on(sample_frame(G, params, data, n, seed), params, data, seed)
    metrics["select/score"] = selection_score(metrics, params.privacy_floor)
    return metrics


def report_on(synth: pd.DataFrame, params: TabularParams, data: TabularData, seed: int) -> dict:
    """Part A's metrics for decoded synthetic rows, re-encoded exactly as a user would get them."""
    synth_enc = data.transformer.transform(synth)
    return tabular_report(
        data.fit_frame, synth, data.fit_enc, synth_enc, data.numeric(), data.nominal(),
        data.target, data.val_X, data.val_y, synth[data.target].to_numpy(dtype=object),
        seed=seed, synth_X_enc=synth_enc[:, data.features], n_estimators=params.metric_trees,
        holdout_enc=data.val_enc)


def selection_score(m: dict, privacy_floor: float = 0.0) -> float:
    """One number to pick the best epoch: utility, marginal fidelity and undetectability alike.

    Each term is in [0, 1] with 1 best; detection AUC counts as 1 - 2|AUC - 0.5|. A privacy
    guard comes first: an epoch whose rows sit nearer the fit rows than `privacy_floor` of what
    the val rows do (`dcr/ratio`) scores 1 lower, so it ranks below every epoch that clears the
    floor, and such epochs still rank among themselves. 0 turns the guard off; without a val
    slice there is no ratio and no guard.
    """
    undetectable = 1.0 - 2.0 * abs(m["detection_auc"] - 0.5)
    score = float(np.mean([m["utility/auc"], m["fidelity/score"], undetectable]))
    ratio = m.get("dcr/ratio", float("nan"))
    return score - 1.0 if privacy_floor > 0 and ratio < privacy_floor else score
