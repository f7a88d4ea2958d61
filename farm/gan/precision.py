"""How an image trial's GAN steps are laid out and rounded on its device.

Two settings of every image family (farm.config.family_params.StepSettings), both off by
default: `channels_last` puts G, D and the real images in channels-last memory, which oneDNN's
CPU convolutions and cuDNN's tensor cores prefer; `autocast: bf16` runs the steps under
bfloat16 autocast (weights, optimizer state and the EMA stay float32; bf16 has float32's range,
so no loss scaling). On one CPU core the `conditional` step ran 2.5x faster with both
(bench/speed.py --modes; bench/RESULTS.md). Only the training steps change: evaluation, export,
pictures and checkpoints see float32 weights, so a checkpoint loads into any float32 model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from farm.gan.gan_loop import GanPair
from farm.models.precision import autocast_steps, channels_last


@dataclass(frozen=True)
class StepPrecision:
    """A trial's `channels_last` and `autocast`; `of(params)` reads them from any family's
    params (a tabular family has neither: plain float32 steps)."""

    channels_last: bool = False
    autocast: str = ""

    @classmethod
    def of(cls, params) -> StepPrecision:
        return cls(bool(getattr(params, "channels_last", False)), getattr(params, "autocast", ""))

    def lay_out(self, pair: GanPair) -> GanPair:
        """G and D (an EMA generator's average too) in channels-last memory, in place: the
        parameters stay the same objects, so the optimizers and hooks that hold them still do."""
        if self.channels_last:
            pair.generator.to(memory_format=torch.channels_last)
            pair.discriminator.to(memory_format=torch.channels_last)
        return pair

    def rows(self, real):
        """The real rows as the steps want them: image batches (4-d) channels-last; labels,
        and tables, as they are."""
        if not self.channels_last:
            return real
        if isinstance(real, tuple):
            return tuple(self.rows(part) for part in real)
        return channels_last(real)

    def steps(self, device: torch.device):
        """The context the training steps run in: bf16 autocast (its weight cache off, since an
        epoch's optimizer steps change the weights inside it), or nothing."""
        return autocast_steps(self.autocast, device)
