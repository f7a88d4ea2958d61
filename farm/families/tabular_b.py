"""`tabular-b`: a generator G(z, c) asked for rows on which the black box answers confidence c.

Data: the encoded `fit` rows and the black box (farm.models.blackbox). Models: the part-A MLPs,
G with the requested confidence as an extra input, D with minibatch discrimination. Game (the
report's part B): D sees a generated row x with c and y = BB(x) in random order and must tell
which slot holds the black box's answer; G is rewarded when it cannot, i.e. when BB(x) is close
to c. Metric: confidence error and coverage over [0, 1] (selects the epoch), plus part A's
metrics. Settings: ConfidenceParams (farm/config/family_params.py).

Variants (trials/tabular.yaml): `report` as built in the report; `proposal`, its section 6: a
small net maps (z, c) to G's confidence input and an L2 penalty on |BB(x) - c| flows through a
differentiable stand-in of the forest (the forest has no gradient: an MLP distilled from it on
real and generated rows, trained alongside D so it follows G into new regions); `anchored`, the
farm's further change: the proposal plus a part-A realness critic and c requested over all of
[0, 1], so rows stay plausible while the link is learned everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from farm.config.family_params import ConfidenceParams
from farm.data.trial_data import TabularData
from farm.families.tabular_a import report_on
from farm.gan.gan_loop import LOSSES, GanPair, gradient_penalty
from farm.models.tabular import MLPDiscriminator, MLPGenerator, mlp

GRID = np.round(np.linspace(0.05, 0.95, 19), 2)  # requested confidences for the error metric
BINS = 10                                          # equal bins of [0, 1] for coverage


class ConfidenceGenerator(nn.Module):
    """G(z, c): the part-A MLP with the confidence as an extra input (optionally learned)."""

    def __init__(self, body: MLPGenerator, conf_net: nn.Module | None):
        super().__init__()
        self.body, self.conf_net = body, conf_net

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c = c.reshape(-1, 1)
        if self.conf_net is not None:
            c = torch.sigmoid(self.conf_net(torch.cat([z, c], dim=1)))
        return self.body(z, c)


class Critics(nn.Module):
    """Everything on D's side, trained by one optimizer: the slot judge, the optional realness
    critic and the forest's differentiable stand-in."""

    def __init__(self, slot: nn.Module, realness: nn.Module | None, surrogate: nn.Module | None):
        super().__init__()
        self.slot, self.realness, self.surrogate = slot, realness, surrogate


def build(params: ConfidenceParams, data: TabularData, device: torch.device) -> GanPair:
    width = len(data.features)
    if params.emit_label:  # whole encoded rows, the target's one-hot block included
        out, nominal = data.transformer.width, data.transformer.nominal_blocks()
    else:
        out, nominal = width, feature_nominal_blocks(data)
    body = MLPGenerator(params.noise_dim, out, params.g_hidden, params.leaky_slope,
                        params.g_output, cond_dim=1, nominal_blocks=nominal,
                        gumbel_tau=params.gumbel_tau, batchnorm=params.g_batchnorm)
    conf_net = mlp([params.noise_dim + 1, *params.conf_hidden, 1], params.leaky_slope) \
        if params.conf_net else None
    G = ConfidenceGenerator(body, conf_net)
    slot = MLPDiscriminator(width + 2, params.d_hidden, params.leaky_slope,
                            params.minibatch_features, params.minibatch_kernel, params.d_dropout)
    realness = (MLPDiscriminator(out, params.d_hidden, params.leaky_slope) if params.realness
                else None)
    surrogate = mlp([width, *params.surrogate_hidden, 1], params.leaky_slope) \
        if params.conf_weight else None
    D = Critics(slot, realness, surrogate)
    G, D = G.to(device), D.to(device)
    betas = (params.beta1, params.beta2)
    critics = [p for name, p in D.named_parameters() if not name.startswith("surrogate.")]
    groups = [{"params": critics, "lr": params.lr_d}]
    if surrogate is not None:  # the stand-in must keep up with G whatever D's (tiny) rate is
        groups.append({"params": list(surrogate.parameters()), "lr": params.surrogate_lr})
    return GanPair(G, D, torch.optim.Adam(G.parameters(), params.lr_g, betas=betas),
                   torch.optim.Adam(groups, params.lr_d, betas=betas))


def feature_nominal_blocks(data: TabularData) -> list[tuple[int, int]]:
    """Where each nominal feature's one-hot block sits in a row without the target: blocks
    after the target's move left by its width."""
    target = data.transformer.block(data.target)
    width = target.stop - target.start
    return [(b.start - width, b.stop - width) if b.start >= target.stop else (b.start, b.stop)
            for b in data.transformer.blocks
            if b.column.kind == "nominal" and b.column.name != data.target]


def real_rows(data: TabularData, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole encoded fit rows (label included, for a critic that sees it) and the forest's
    answers on their features, asked once: the rows never change, and each question is a host
    round trip through 100 trees."""
    answers = data.black_box.confidence_np(data.fit_enc[:, data.features])
    return (torch.tensor(data.fit_enc, dtype=torch.float32, device=device),
            torch.tensor(answers, dtype=torch.float32, device=device))


@dataclass
class ConfidenceGame:
    """The report's slot game, plus the proposal's penalty and the realness critic if enabled."""

    D: Critics
    params: ConfidenceParams
    data: TabularData
    device: torch.device
    _answer: torch.Tensor | None = None  # BB(fake) from the D step, reused by the G step
    _surrogate_opt: torch.optim.Optimizer | None = None

    def __post_init__(self):
        self._feature_index = torch.as_tensor(self.data.features, device=self.device)
        if self.D.surrogate is not None and self.params.surrogate_steps > 1:
            self._surrogate_opt = torch.optim.Adam(self.D.surrogate.parameters(),
                                                   self.params.surrogate_lr)

    def state_dict(self) -> dict:
        """What the game keeps beside G and D: the surrogate's own optimizer, so a resumed trial
        distils on from the moments it had (the trainable checkpoints it)."""
        return {"surrogate_opt": self._surrogate_opt.state_dict()} if self._surrogate_opt else {}

    def load_state_dict(self, state: dict) -> None:
        if self._surrogate_opt is not None and "surrogate_opt" in state:
            self._surrogate_opt.load_state_dict(state["surrogate_opt"])

    def _features(self, fake: torch.Tensor) -> torch.Tensor:
        """The columns of G's rows that the forest, the slot judge and the stand-in read: G's
        rows are whole only when it writes the label."""
        return fake[:, self._feature_index] if self.params.emit_label else fake

    def sample(self, n):
        p = self.params
        z = torch.randn(n, p.noise_dim, device=self.device)
        c = p.c_low + (p.c_high - p.c_low) * torch.rand(n, device=self.device)
        return z, c

    def _slots(self, x, c, answer):
        """(x, c, y) with c and y in random order; label 1 where slot 1 holds the answer."""
        first = torch.rand(x.shape[0], device=x.device) < 0.5
        s1, s2 = torch.where(first, answer, c), torch.where(first, c, answer)
        return torch.cat([x, s1[:, None], s2[:, None]], dim=1), first.float()

    def d_loss(self, real, fake, inputs, epoch):
        p, bb = self.params, self.data.black_box
        real, real_answer = real
        _, c = inputs
        real_features = real[:, self._feature_index]  # real rows are whole (see real_rows)
        critic_real = real if self.params.emit_label else real_features
        critic_fake, real, fake = fake, real_features, self._features(fake)
        answer = self._answer = bb.confidence(fake)  # the forest is slow: ask it once per step
        noisy = fake + (p.instance_noise / max(epoch, 1)) * torch.randn_like(fake)
        x, label = self._slots(noisy, c, answer)
        logits = self.D.slot(x)
        loss = F.binary_cross_entropy_with_logits(logits, label * p.real_label)
        stats = {"d_acc": ((logits > 0).float() == label).float().mean()}
        if self.D.realness is not None:
            d_fn = LOSSES["wasserstein"][0]
            loss = loss + p.realness_weight * (
                d_fn(self.D.realness(critic_real), self.D.realness(critic_fake), None, None)
                + 10.0 * gradient_penalty(self.D.realness, critic_real, critic_fake))
        if self.D.surrogate is not None:
            # Distil the forest on this batch's real and generated rows: the stand-in follows G.
            rows = torch.cat([real, fake])
            target = torch.cat([real_answer, answer])
            surrogate_loss = self._distil(rows, target)
            loss = loss + surrogate_loss
            stats["surrogate_loss"] = surrogate_loss.detach()
        stats["confidence_gap"] = (answer - c).abs().mean()
        return loss, stats

    def _distil(self, rows, target):
        """Extra steps on this batch first (their own optimizer), then the loss for D's step."""
        surrogate = self.D.surrogate
        if self._surrogate_opt is not None:  # surrogate_steps > 1
            for _ in range(self.params.surrogate_steps - 1):
                extra = F.mse_loss(torch.sigmoid(surrogate(rows).squeeze(1)), target)
                self._surrogate_opt.zero_grad(set_to_none=True)
                extra.backward()
                self._surrogate_opt.step()
        return F.binary_cross_entropy_with_logits(surrogate(rows).squeeze(1), target)

    def g_loss(self, real, fake, inputs, epoch):
        p = self.params
        _, c = inputs
        critic_fake, fake = fake, self._features(fake)
        answer = self._answer if self._answer is not None and len(self._answer) == len(fake) \
            else self.data.black_box.confidence(fake)
        x, label = self._slots(fake, c, answer)
        loss = F.binary_cross_entropy_with_logits(self.D.slot(x), 1.0 - label)  # fool the judge
        stats = {}
        if self.D.realness is not None:
            loss = loss + p.realness_weight * LOSSES["wasserstein"][1](self.D.realness(critic_fake))
        if self.D.surrogate is not None and p.conf_weight:
            achieved = torch.sigmoid(self.D.surrogate(fake).squeeze(1))
            penalty = ((achieved - c) ** 2).mean()
            loss = loss + p.conf_weight * penalty
            stats["confidence_penalty"] = penalty.detach()
        return loss, stats


def game(params: ConfidenceParams, data: TabularData, pair: GanPair,
         device: torch.device) -> ConfidenceGame:
    if pair.discriminator.surrogate is not None:
        distil_surrogate(pair.discriminator.surrogate, data, params, device)
    return ConfidenceGame(pair.discriminator, params, data, device)


def distil_surrogate(surrogate: nn.Module, data: TabularData, params: ConfidenceParams,
                     device: torch.device, seed: int = 0) -> float:
    """Fit the stand-in to the forest before G moves: real rows, and rows whose columns are
    shuffled independently (plausible values in new combinations) so it has seen more than the
    forest's training points. Returns the final loss."""
    rng = np.random.default_rng(seed)
    real = data.fit_enc[:, data.features]
    mixed = np.column_stack([rng.permutation(col) for col in real.T])
    # Shuffling splits one-hot blocks apart; re-pair them from whole rows per nominal block.
    for lo, hi in feature_nominal_blocks(data):
        mixed[:, lo:hi] = real[rng.permutation(len(real)), lo:hi]
    rows = np.vstack([real, mixed])
    x = torch.tensor(rows, dtype=torch.float32, device=device)
    y = torch.tensor(data.black_box.confidence_np(rows), dtype=torch.float32, device=device)
    opt = torch.optim.Adam(surrogate.parameters(), params.surrogate_lr)
    gen = torch.Generator().manual_seed(seed)
    loss = torch.zeros(())
    for _ in range(params.surrogate_warmup):
        index = torch.randint(len(x), (128,), generator=gen).to(device)
        loss = F.binary_cross_entropy_with_logits(surrogate(x[index]).squeeze(1), y[index])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.detach())


@torch.no_grad()
def generate(G: nn.Module, params: ConfidenceParams, data: TabularData, requested: np.ndarray,
             seed: int, best_of: int | None = None,
             rng: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Encoded full rows (target = the black box's answer) and the achieved confidences.

    With `best_of` K > 1 (default: params.pick_best_of), K rows are drawn for every request and
    the one whose black-box answer is closest to it is kept. The black box can be asked but not
    differentiated, so asking it at sampling time is the one exact signal there is; G still has
    to land near c (K draws around a wrong place stay wrong), and K = 1 is the bare generator.
    The noise is `seed`'s, or the next draws of `rng` (a long sample made in blocks)."""
    G.eval()
    k = params.pick_best_of if best_of is None else best_of
    device = next(G.parameters()).device
    n = len(requested)
    gen = rng if rng is not None else torch.Generator(device=device).manual_seed(seed)
    z = torch.randn(k * n, params.noise_dim, device=device, generator=gen)
    c = torch.as_tensor(np.tile(requested, k), dtype=torch.float32, device=device)
    drawn = G(z, c).float().cpu().numpy()
    if params.emit_label:  # the label G wrote is for its critic; the row's label is the forest's
        drawn = drawn[:, data.features]
    answers = data.black_box.confidence_np(drawn)
    pick = np.abs(answers.reshape(k, n) - np.asarray(requested)).argmin(axis=0) * n + np.arange(n)
    features, achieved = drawn[pick], answers[pick]
    full = np.zeros((n, data.transformer.width))
    full[:, data.features] = features
    target = data.transformer.block(data.target)
    categories = list(target.column.categories)
    labels = data.black_box.labels(achieved)
    full[np.arange(len(labels)), [target.start + categories.index(v) for v in labels]] = 1.0
    return full, achieved


def confidence_metrics(G, params, data, seed: int) -> dict[str, float]:
    """Error over an even grid of requests, and how many of ten bins are hit when asked for.
    When rows are picked from several draws, the bare generator's error is reported too."""
    m = params.eval_requests
    requested = np.repeat(GRID, m)
    _, achieved = generate(G, params, data, requested, seed)
    rng = np.random.default_rng(seed)
    low = np.repeat(np.arange(BINS) / BINS, m)
    in_bin = low + rng.uniform(0, 1 / BINS, size=low.shape)
    _, hit = generate(G, params, data, in_bin, seed + 1)
    inside = (hit >= low) & ((hit < low + 1 / BINS) | (low + 1 / BINS >= 1.0))
    covered = inside.reshape(BINS, m).mean(axis=1) >= 0.5
    metrics = {"confidence/error": float(np.mean(np.abs(achieved - requested))),
               "confidence/coverage": float(covered.sum()),
               "balance/positive": float(np.mean(achieved >= 0.5))}
    if params.pick_best_of > 1:
        _, bare = generate(G, params, data, requested, seed, best_of=1)
        metrics["confidence/error_single_draw"] = float(np.mean(np.abs(bare - requested)))
    return metrics


def evaluate(G, params: ConfidenceParams, data: TabularData, seed: int) -> dict:
    """Confidence metrics plus part A's, on rows requested evenly over [0, 1]; train data only."""
    metrics = confidence_metrics(G, params, data, seed)
    n = params.eval_rows or len(data.fit_frame)
    full, _ = generate(G, params, data, np.linspace(0, 1, n), seed + 2)
    metrics.update(report_on(data.transformer.inverse_transform(full), params, data, seed))
    metrics["select/confidence"] = selection_score(metrics, params.error_tolerance)
    return metrics


def selection_score(metrics: dict, tolerance: float) -> float:
    """What picks the epoch (lower is better): the confidence error; with a tolerance, every
    epoch whose error is within it ranks before every epoch outside it, and among those the
    one whose rows a detector tells least from the real train rows wins. Picking rows makes
    the error small at almost every epoch, so the bare minimum would pick by noise, and
    usually an early, less realistic epoch. Tolerance 0 is the plain error."""
    error = metrics["confidence/error"]
    if error > tolerance:
        return float(error)
    return float(tolerance * metrics["detection_auc"])  # in [tolerance / 2, tolerance]


def sample_frame(G, params: ConfidenceParams, data: TabularData, n: int, seed: int,
                 requested: np.ndarray | None = None,
                 rng: torch.Generator | None = None) -> pd.DataFrame:
    """Rows in the original schema plus the requested and achieved confidence of each: n
    requests evenly over [0, 1] (the export's), or the `requested` ones; noise as `generate`'s."""
    requested = np.linspace(0, 1, n) if requested is None else np.asarray(requested, dtype=float)
    full, achieved = generate(G, params, data, requested, seed, rng=rng)
    frame = data.transformer.inverse_transform(full)
    frame["requested_confidence"] = np.round(requested, 4)
    frame["achieved_confidence"] = np.round(achieved, 4)
    return frame


def pictures(G, params: ConfidenceParams, data: TabularData, seed: int) -> dict:
    """The link at a glance: requested vs achieved, and the achieved confidences per class."""
    from farm.reporting import figures

    requested = np.repeat(GRID, max(4, params.eval_requests // 2))
    _, achieved = generate(G, params, data, requested, seed + 3)
    labels = data.black_box.labels(achieved)
    return {"confidence_link": figures.confidence_scatter(requested, achieved),
            "confidence_by_class": figures.confidence_histograms(
                achieved, labels, title="achieved confidence, by the black box's class")}
