"""The image families of the fruit report, scored by the experiment's judge.

`fruit-pairs` (kind `image-pair`): one G/D pair per class; D tells the class's real images from
generated ones. `spiked` (kind `image-spiked`): one conditional model for all classes; the class
is a spike in G's noise (entry k of G1's vector set to s, or column k of G2/G2a's plane set to
ones), and D has one output per class plus one for "fake". Both are scored every few epochs on a
fixed noise batch: KID to the class's real TRAIN images in the judge's feature space, and the
share of images the judge puts in the requested class. With `diffaug` set, D sees every
image, real or generated, through DiffAugment (farm.gan.diffaugment).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from farm.data.images import label_tensor, to_unit_range
from farm.gan.diffaugment import augmented
from farm.gan.ema import EMAGenerator, follow
from farm.gan.gan_loop import GanPair, RealVsFake, Tricks, d_accuracy
from farm.gan.regularisers import keep_lecam, regularisers
from farm.metrics.images import diversity, kid
from farm.metrics.judge import Judge
from farm.metrics.usefulness import usefulness
from farm.models.images import DISCRIMINATORS, GENERATORS, noise_for


@dataclass(frozen=True)
class ImageParams:
    """Every setting of an image trial; the defaults are the fruit report's."""

    generator: str = "G2a"          # G1 | G2 | G2a
    discriminator: str = "D34"      # D34 | DCGAN
    g_width: int = 64
    d_width: int = 64               # DCGAN only
    optimizer: str = "sgd"          # the report's SGD with momentum 0.95; or adam
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    momentum: float = 0.95
    beta1: float = 0.5
    beta2: float = 0.999            # Adam's second beta
    batch_size: int = 16
    loss: str = "bce"               # cross-entropy, as in the report
    real_label: float = 1.0
    spike_value: float = 10.0       # G1 spiked variant (the report tried 1 and 10)
    eval_images: int = 32           # fixed-noise images per class at each evaluation
    kid_subsets: int = 50
    grid_images: int = 16           # per class in TensorBoard's grid
    diffaug: str = ""               # DiffAugment policy on D's inputs ("color,cutout"); "" = off
    # fruit-pairs only (farm.gan.regularisers, farm.gan.ema), off by default:
    lecam: float = 0.0              # LeCam weight on D's loss (Tseng et al. 2021)
    ema_decay: float = 0.0          # > 0: eval mode samples an EMA of G's weights (per G step)
    ema_start: int = 0              # G steps during which that EMA is a plain copy of G


@dataclass
class ImageData:
    """Decoded once in the driver, shared with every trial through the object store."""

    name: str
    images: np.ndarray              # uint8 [N, H, W, 3], TRAIN split only
    labels: np.ndarray              # int64 [N]
    classes: tuple[str, ...]
    judge: dict                     # Judge.payload()
    real_features: dict[int, np.ndarray]  # per class: the judge's features of its fit images
    val_features: np.ndarray | None = None  # the judge's features of the val slice (kept from
    val_labels: np.ndarray | None = None    # GANs and judge): what `useful` is tested on

    def tensor(self, index, device) -> torch.Tensor:
        return to_unit_range(self.images[index], device)


def _optimizer(params: ImageParams, module, lr):
    if params.optimizer == "sgd":
        return torch.optim.SGD(module.parameters(), lr, momentum=params.momentum)
    return torch.optim.Adam(module.parameters(), lr, betas=(params.beta1, params.beta2))


def _pair(params: ImageParams, G, D, device) -> GanPair:
    """The pair on the device with its optimizers; an EMAGenerator's optimizer trains its raw
    generator and the average follows every step."""
    G, D = G.to(device), D.to(device)
    trained = G.raw if isinstance(G, EMAGenerator) else G
    pair = GanPair(G, D, _optimizer(params, trained, params.lr_g),
                   _optimizer(params, D, params.lr_d))
    if trained is not G:
        follow(G, pair.g_opt)
    return pair


def _discriminator(params: ImageParams, outputs: int):
    if params.discriminator in ("DCGAN", "SNResNet"):
        return DISCRIMINATORS[params.discriminator](params.d_width, num_outputs=outputs)
    return DISCRIMINATORS[params.discriminator](num_outputs=outputs)


# --------------------------------------------------------------------------- fruit-pairs


@dataclass
class ClassView:
    """A fruit-pairs trial's view of the data: one class of it."""

    data: ImageData
    label: int


def class_view(data: ImageData, spec: dict) -> ClassView:
    return ClassView(data, data.classes.index(spec["class"]))


def build_pair(params: ImageParams, view: ClassView, device) -> GanPair:
    """The report's pair; with `ema_decay` its G is wrapped in an EMAGenerator (the average is
    what evaluation, export and pictures sample), with `lecam` D keeps LeCam's averages."""
    G = GENERATORS[params.generator](width=params.g_width)
    if params.ema_decay:
        G = EMAGenerator(G, params.ema_decay, params.ema_start)
    D = _discriminator(params, 1)
    if params.lecam:
        keep_lecam(D)
    return _pair(params, G, D, device)


def pair_game(params: ImageParams, view: ClassView, pair: GanPair, device) -> RealVsFake:
    return RealVsFake(augmented(pair.discriminator, params.diffaug),
                      lambda n: (noise_for(pair.generator, n, device),),
                      Tricks(real_label=params.real_label, loss=params.loss),
                      regularisers(pair.discriminator, params.lecam))


def class_rows(view: ClassView, device) -> torch.Tensor:
    """The class's train images, resident on the trial's device for the whole run."""
    return view.data.tensor(np.flatnonzero(view.data.labels == view.label), device)


# --------------------------------------------------------------------------- spiked


def build_spiked(params: ImageParams, data: ImageData, device) -> GanPair:
    kwargs = {"spike_value": params.spike_value} if params.generator == "G1" else {}
    G = GENERATORS[params.generator](width=params.g_width, cond_classes=len(data.classes), **kwargs)
    return _pair(params, G, _discriminator(params, len(data.classes) + 1), device)


def all_rows(data: ImageData, device) -> tuple[torch.Tensor, torch.Tensor]:
    return data.tensor(slice(None), device), label_tensor(data.labels, device)


@dataclass
class SpikedGame:
    """D: real images to their class, generated ones to "fake" (the last output).
    G: rewarded when D puts its image in the class it was asked for."""

    G: torch.nn.Module
    D: torch.nn.Module
    classes: int
    device: torch.device

    def sample(self, n):
        labels = torch.randint(self.classes, (n,), device=self.device)
        return noise_for(self.G, n, self.device), labels

    def d_loss(self, real, fake, inputs, epoch):
        images, labels = real
        logits_real, logits_fake = self.D(images), self.D(fake)
        fake_class = torch.full((fake.shape[0],), self.classes, device=fake.device)
        loss = F.cross_entropy(logits_real, labels) + F.cross_entropy(logits_fake, fake_class)
        return loss, d_accuracy(logits_real.argmax(1) == labels,
                                logits_fake.argmax(1) == self.classes)

    def g_loss(self, real, fake, inputs, epoch):
        _, labels = inputs
        return F.cross_entropy(self.D(fake), labels), {}


def spiked_game(params, data, pair, device) -> SpikedGame:
    return SpikedGame(pair.generator, augmented(pair.discriminator, params.diffaug),
                      len(data.classes), device)


# --------------------------------------------------------------------------- scoring


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


def evaluate_pair(G, params: ImageParams, view: ClassView, seed: int) -> dict:
    judge = judge_for(view.data, next(G.parameters()).device)
    fake = generate(G, params.eval_images, seed)
    scores, features = score_class(judge, fake, view.data.real_features[view.label], view.label,
                                   params, seed)
    return {**scores, **useful_scores(view.data, {view.label: features})}


def export_pair(G, params: ImageParams, view: ClassView, n: int, seed: int) -> dict:
    """{class name: uint8 [n, H, W, 3]} for the ImageFolder export."""
    return {view.data.classes[view.label]: to_uint8(generate(G, n, seed))}


def export_spiked(G, params: ImageParams, data: ImageData, n: int, seed: int) -> dict:
    return {name: to_uint8(generate(G, n, seed + label, label))
            for label, name in enumerate(data.classes)}


def pictures_pair(G, params: ImageParams, view: ClassView, seed: int) -> dict:
    return {"samples": grid(generate(G, params.grid_images, seed), rows=1)}


def pictures_spiked(G, params: ImageParams, data: ImageData, seed: int) -> dict:
    rows = [generate(G, params.grid_images, seed + label, label)
            for label in range(len(data.classes))]
    return {"samples_by_class": grid(torch.cat(rows), rows=len(rows))}


def to_uint8(images: torch.Tensor) -> np.ndarray:
    x = images.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def evaluate_spiked(G, params: ImageParams, data: ImageData, seed: int) -> dict:
    judge = judge_for(data, next(G.parameters()).device)
    metrics, generated = {}, {}
    for label, name in enumerate(data.classes):
        fake = generate(G, params.eval_images, seed + label, label)
        scores, generated[label] = score_class(judge, fake, data.real_features[label], label,
                                               params, seed)
        metrics.update({f"{key}/{name}": value for key, value in scores.items()})
    metrics.update(useful_scores(data, generated))

    def mean(key: str) -> float:
        return float(np.mean([metrics[f"{key}/{c}"] for c in data.classes]))

    metrics.update({"kid/mean": mean("kid"), "judge_accuracy/mean": mean("judge_accuracy"),
                    "diversity/mean": mean("diversity")})
    return metrics


def grid(images: torch.Tensor, rows: int) -> np.ndarray:
    """A [3, H, W] uint8-ready grid in [0, 1] for TensorBoard, one row per class."""
    from torchvision.utils import make_grid

    return make_grid(images.float().cpu(), nrow=max(1, len(images) // rows), normalize=True,
                     value_range=(-1, 1)).numpy()
