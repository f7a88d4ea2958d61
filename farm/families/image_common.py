"""What the image families share: a pair on its device with its optimizers, fixed-noise draws,
and scoring them with the experiment's judge.

Every image trial is scored every few epochs on a fixed noise batch: KID to the class's real
TRAIN images in the judge's feature space, the share of images the judge puts in the requested
class, their diversity, and how useful they are to a probe tested on the val slice. The
families are fruit_pairs.py, spiked.py and conditional.py.
"""

from __future__ import annotations

import numpy as np
import torch

from farm.config.family_params import ImageParams
from farm.data.trial_data import ImageData
from farm.gan.ema import EMAGenerator, follow
from farm.gan.gan_loop import GanPair
from farm.metrics.images import diversity, kid
from farm.metrics.judge import Judge
from farm.metrics.usefulness import usefulness
from farm.models.images import DISCRIMINATORS, noise_for
from farm.models.precision import autocast_steps


def _optimizer(params: ImageParams, module, lr):
    if params.optimizer == "sgd":
        return torch.optim.SGD(module.parameters(), lr, momentum=params.momentum)
    return torch.optim.Adam(module.parameters(), lr, betas=(params.beta1, params.beta2))


def pair_on(params: ImageParams, G, D, device) -> GanPair:
    """The pair on the device with its optimizers; an EMAGenerator's optimizer trains its raw
    generator and the average follows every step."""
    G, D = G.to(device), D.to(device)
    trained = G.raw if isinstance(G, EMAGenerator) else G
    pair = GanPair(G, D, _optimizer(params, trained, params.lr_g),
                   _optimizer(params, D, params.lr_d))
    if trained is not G:
        follow(G, pair.g_opt)
    return pair


def discriminator_for(params: ImageParams, outputs: int):
    """The settings' D with `outputs` logits (1 for a pair, classes + 1 for spiked)."""
    if params.discriminator in ("DCGAN", "SNResNet"):
        return DISCRIMINATORS[params.discriminator](params.d_width, num_outputs=outputs)
    return DISCRIMINATORS[params.discriminator](num_outputs=outputs)


@torch.no_grad()
def generate(G, n: int, seed: int, label: int | None = None,
             rng: torch.Generator | None = None) -> torch.Tensor:
    """A fixed-noise batch (same seed -> same images at every evaluation), or the next draws
    of `rng` (a long sample made in blocks)."""
    G.eval()
    device = next(G.parameters()).device
    rng = rng if rng is not None else torch.Generator(device=device).manual_seed(seed)
    z = noise_for(G, n, device, generator_rng=rng)
    if label is None:
        return G(z)
    return G(z, torch.full((n,), label, dtype=torch.long, device=device))


def scored_draw(G, params, n: int, seed: int, label: int | None = None) -> torch.Tensor:
    """The fixed-noise batch an evaluation scores, as float32 images: drawn in float32, or
    under the steps' autocast where `eval_autocast` asks (the conditional family's 128 images a
    class: most of an evaluation's time is this draw)."""
    device = next(G.parameters()).device
    autocast = params.autocast if params.eval_autocast else ""
    with autocast_steps(autocast, device):
        return generate(G, n, seed, label).float()


def score_class(judge: Judge, fake: torch.Tensor, real_features: np.ndarray, label: int,
                params, seed: int) -> tuple[dict[str, float], torch.Tensor]:
    """KID to the class's real fit images in the judge's space, judge accuracy, and the
    diversity of the generated images next to the real ones (near 0: collapsed); and the
    generated images' judge features (on the CPU), for the usefulness probe."""
    rng = torch.Generator().manual_seed(seed)
    features, predictions = judge.features_and_predictions(fake)
    real = torch.tensor(np.array(real_features), dtype=torch.float64)
    generated = features.double().cpu()
    value, _ = kid(real, generated, subsets=params.kid_subsets, subset_size=1000, generator=rng)
    return {"kid": float(value),
            "judge_accuracy": float((predictions.cpu() == label).float().mean()),
            "diversity": diversity(real, generated)}, generated


def useful_scores(data: ImageData, generated: dict[int, torch.Tensor]) -> dict[str, float]:
    """`useful` and friends (farm.metrics.usefulness) on the val slice; {} without one."""
    return usefulness(generated, data.real_features, data.val_features, data.val_labels,
                      data.classes)


def judge_for(data: ImageData, device) -> Judge:
    """The judge, built once per trial from the payload the driver shared, kept on the data."""
    judge = getattr(data, "_judge", None)
    if judge is None:
        judge = Judge.from_payload(data.judge, device)
        data._judge = judge
    return judge


def to_uint8(images: torch.Tensor) -> np.ndarray:
    x = images.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def grid(images: torch.Tensor, rows: int) -> np.ndarray:
    """A [3, H, W] uint8-ready grid in [0, 1] for TensorBoard, one row per class."""
    from torchvision.utils import make_grid

    return make_grid(images.float().cpu(), nrow=max(1, len(images) // rows), normalize=True,
                     value_range=(-1, 1)).numpy()
