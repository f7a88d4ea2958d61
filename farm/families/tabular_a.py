"""`tabular-a`: the tabular report's part A, an MLP GAN over the encoded rows of one table.

Data: the encoded `fit` rows. Models: `farm.models.tabular`. Metric: fidelity, detection,
utility on the `val` slice and distance to closest record of decoded-then-re-encoded samples,
so the numbers describe exactly the rows a user gets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from farm.data.transformer import TableTransformer
from farm.gan.gan_loop import GanPair, RealVsFake, Tricks
from farm.metrics.tabular import tabular_report
from farm.models.tabular import MLPDiscriminator, MLPGenerator


@dataclass(frozen=True)
class TabularParams:
    """Every setting of a tabular-a trial; trials/tabular.yaml sets them, nothing else."""

    noise_dim: int = 20
    g_hidden: tuple[int, ...] = (64, 128, 256)
    d_hidden: tuple[int, ...] = (256, 128, 64)
    leaky_slope: float = 0.4
    g_output: str = "capped_relu"  # or sigmoid, or blockwise (one-hot per nominal column)
    gumbel_tau: float = 0.2
    d_dropout: float = 0.0
    g_batchnorm: bool = False
    pack: int = 1                 # D judges this many rows at once (PacGAN); 1 = the report
    loss: str = "bce"             # bce (the report) | hinge | wasserstein
    gradient_penalty: float = 0.0
    beta2: float = 0.999
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.5
    batch_size: int = 64
    real_label: float = 0.9
    flip_every: int = 1
    flip_fraction: float = 0.05
    instance_noise: float = 0.0
    minibatch_features: int = 0
    eval_rows: int = 0           # rows sampled per evaluation; 0 = as many as the fit split
    metric_trees: int = 50       # forest size for the per-epoch utility metric

    def tricks(self) -> Tricks:
        return Tricks(self.real_label, self.flip_every, self.flip_fraction, self.instance_noise,
                      self.loss, self.gradient_penalty)


@dataclass
class TabularData:
    """What a tabular trial needs, built once by the driver and shared via the object store."""

    name: str
    transformer: TableTransformer
    target: str
    fit_frame: pd.DataFrame
    fit_enc: np.ndarray
    val_X: np.ndarray
    val_y: np.ndarray
    black_box: object = None  # farm.models.blackbox.BlackBox, for a family steered by one

    @property
    def features(self) -> np.ndarray:
        return self.transformer.feature_slices(self.target)

    def numeric(self) -> list[str]:
        return [b.column.name for b in self.transformer.blocks if b.column.kind == "numeric"]

    def nominal(self) -> list[str]:
        return [b.column.name for b in self.transformer.blocks if b.column.kind == "nominal"]


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
                      params.tricks())


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
    metrics["select/score"] = selection_score(metrics)
    return metrics


def report_on(synth: pd.DataFrame, params: TabularParams, data: TabularData, seed: int) -> dict:
    """Part A's metrics for decoded synthetic rows, re-encoded exactly as a user would get them."""
    synth_enc = data.transformer.transform(synth)
    return tabular_report(
        data.fit_frame, synth, data.fit_enc, synth_enc, data.numeric(), data.nominal(),
        data.target, data.val_X, data.val_y, synth[data.target].to_numpy(dtype=object),
        seed=seed, synth_X_enc=synth_enc[:, data.features], n_estimators=params.metric_trees)


def selection_score(m: dict) -> float:
    """One number to pick the best epoch: utility, marginal fidelity and undetectability alike.

    Each term is in [0, 1] with 1 best; detection AUC counts as 1 - 2|AUC - 0.5|.
    """
    undetectable = 1.0 - 2.0 * abs(m["detection_auc"] - 0.5)
    return float(np.mean([m["utility/auc"], m["fidelity/score"], undetectable]))
