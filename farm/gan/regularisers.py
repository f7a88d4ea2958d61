"""What keeps a GAN on a few dozen images a class from collapsing or memorising, as settings.

Two terms a game adds to D's loss (each off at weight 0) and one schedule:

- LeCam (Tseng et al., CVPR 2021, "Regularizing Generative Adversarial Networks under Limited
  Data"): keep moving averages of D's mean output on real and on generated images, and
  penalise D's outputs for crossing to the other side's average:
  mean(relu(D(real) - ema_fake)^2) + mean(relu(ema_real - D(fake))^2), as `lecam_reg` in
  google/lecam-gan's BigGAN code and `lecamreg` in its StyleGAN2 code (the square inside the
  mean). The averages follow the StyleGAN2 version: decay 0.99, updated with the current
  batch before the term is taken, and bias-corrected (TensorFlow's `zero_debias`), so the
  first step needs no warm-up (the BigGAN code instead tracks the latest batch for 1,000
  steps, then decays by 0.9). Their weight was 0.3 for BigGAN on CIFAR.
- Consistency (Zhang et al., ICLR 2020, "Consistency Regularization for GANs"; the real-image
  half of Zhao et al. 2020's balanced bCR): D's score of a real image should not move when
  the image is transformed, mean((D(T(x)) - D(x))^2), T a DiffAugment policy. D(x) is the
  score the loss already took, so with DiffAugment on it is D of an augmented x. Their
  weight was 10.
- Transitional conditioning (Shahbazi et al., ICLR 2022, "Collapse by Conditioning: Training
  Class-conditional GANs with Limited Data"; mshahbazi72/transitional-cGAN): a conditional
  GAN starts unconditional and the class is blended in, its weight rising linearly from 0 to 1
  between two G steps. The paper scales G's class embedding and D's conditional loss by it;
  our models scale their conditional batch norms' class gain and bias (from gain 1, bias 0)
  and the projection term of D's output (farm.models.conditional). The weight is a
  `condition_weight` buffer of each model (in its state_dict, so a checkpoint and the EMA
  generator carry it), set after every G step from a step count that is itself a buffer: no
  host sync, and a resumed trial continues exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from farm.config.family_params import check_transition
from farm.gan.diffaugment import diff_augment, parse_policy
from farm.infra.errors import ConfigError

LECAM_DECAY = 0.99  # as in google/lecam-gan's StyleGAN2 code
WEIGHT = "condition_weight"  # the buffer transitional conditioning sets


class LeCam(nn.Module):
    """The moving averages of D's mean output on real and on generated images, as buffers.

    Kept as D's submodule `lecam` (`keep_lecam`): D's parameters and forward do not change, and
    its state_dict, hence every checkpoint, carries the averages.
    """

    def __init__(self, decay: float = LECAM_DECAY):
        super().__init__()
        self.decay = decay
        self.register_buffer("sums", torch.zeros(2))  # real, fake; not yet bias-corrected
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def averages(self) -> torch.Tensor:
        """[ema_real, ema_fake], bias-corrected (zeros before the first update)."""
        return self.sums / (1 - self.decay ** self.steps.clamp(min=1))

    def forward(self, out_real: torch.Tensor, out_fake: torch.Tensor) -> torch.Tensor:
        """Update the averages with this batch, then the LeCam term of D's loss."""
        with torch.no_grad():
            self.steps += 1
            means = torch.stack([out_real.mean(), out_fake.mean()]).float()
            self.sums.mul_(self.decay).add_((1 - self.decay) * means)
        ema_real, ema_fake = self.averages()
        return (F.relu(out_real - ema_fake).pow(2).mean()
                + F.relu(ema_real - out_fake).pow(2).mean())


def keep_lecam(discriminator: nn.Module, decay: float = LECAM_DECAY) -> LeCam:
    """A LeCam tracker registered as the discriminator's submodule `lecam` (see `LeCam`)."""
    device = next(discriminator.parameters()).device
    discriminator.add_module("lecam", LeCam(decay).to(device))
    return discriminator.lecam


def consistency(D: nn.Module, real: torch.Tensor, seen: torch.Tensor, policy: str,
                *cond) -> torch.Tensor:
    """mean((D(T(x), ...) - D(x, ...))^2) with T = `diff_augment(., policy)` and `seen` the
    score D(x) the loss already took (gradients flow through both, as in Zhang et al.)."""
    return (D(diff_augment(real, policy), *cond) - seen).pow(2).mean()


@dataclass
class Regularisers:
    """The terms above that a game adds to D's loss, with their weights; all off by default.
    `D` is the bare discriminator (the consistency term applies its own T), `tracker` the
    LeCam averages (D's `lecam` submodule)."""

    lecam: float = 0.0
    tracker: LeCam | None = None
    consistency: float = 0.0
    augment: str = "translation,cutout"   # T of the consistency term
    D: nn.Module | None = None

    def __post_init__(self):
        if self.lecam and self.tracker is None:
            raise ValueError("lecam > 0 needs the discriminator's LeCam tracker (keep_lecam)")
        if self.consistency:
            if self.D is None:
                raise ValueError("consistency > 0 needs the discriminator")
            if not parse_policy(self.augment):
                raise ConfigError("consistency needs a transform: set consistency_augment")

    def __call__(self, loss, out_real, out_fake, real, *cond):
        """D's loss with the terms that are on added, and their unweighted values as stats."""
        stats = {}
        if self.lecam:
            term = self.tracker(out_real, out_fake)
            loss, stats["reg/lecam"] = loss + self.lecam * term, term.detach()
        if self.consistency:
            term = consistency(self.D, real, out_real, self.augment, *cond)
            loss, stats["reg/consistency"] = loss + self.consistency * term, term.detach()
        return loss, stats


def regularisers(discriminator: nn.Module, lecam: float = 0.0, consistency: float = 0.0,
                 augment: str = "translation,cutout") -> Regularisers:
    """A game's regularisers for the pair's bare discriminator (which `keep_lecam` was given
    when the pair was built, if `lecam` > 0)."""
    tracker = getattr(discriminator, "lecam", None) if lecam else None
    return Regularisers(lecam, tracker, consistency, augment, discriminator)


def condition_ramp(steps: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """The class's weight after `steps` G steps: 0 until `start`, 1 from `end`, linear
    between (a float tensor on the steps' device)."""
    return ((steps.float() - start) / (end - start)).clamp(0.0, 1.0)


def transition(counter: nn.Module, start: int, end: int, optimizer: torch.optim.Optimizer,
               *modules: nn.Module) -> None:
    """Transitional conditioning: every `condition_weight` buffer in `modules` (their
    submodules included, e.g. both copies in an EMAGenerator) is set to `condition_ramp` of
    `counter.steps` (an EMAGenerator's G step count) now and after every step of `optimizer`
    (G's). Register it after the hook that counts the steps (`farm.gan.ema.follow`); like
    that one, it survives `optimizer.load_state_dict`. Buffers are looked up at each step, so
    moving the models to another device later does not leave the hook behind."""
    check_transition(start, end)

    def weights() -> list[torch.Tensor]:
        return [buffer for module in modules for name, buffer in module.named_buffers()
                if name.rsplit(".", 1)[-1] == WEIGHT]

    if not weights():
        raise ValueError("transitional conditioning: no condition_weight buffer in the models")

    @torch.no_grad()
    def update(*_):
        weight = condition_ramp(counter.steps, start, end)
        for buffer in weights():
            buffer.copy_(weight)

    update()
    optimizer.register_step_post_hook(update)
