"""An exponential moving average (EMA) of a generator's weights, the one that gets sampled.

`EMAGenerator` holds the generator being trained (`raw`) and its average (`ema`) as two
submodules: in train mode it runs `raw` (what the optimizer updates), in eval mode `ema` (what
evaluation, export and pictures sample, since they call the generator in eval mode). Both,
and the step count, are in its `state_dict`, so a checkpoint saved and loaded through
`pair.generator` restores and samples the average with no code of its own.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMAGenerator(nn.Module):
    """`raw` and its average; `update()` after every optimizer step (`follow` arranges it).

    For the first `start` steps the average is a copy of `raw` (a warm start: the early,
    random weights are not averaged in); after that ema <- decay * ema + (1 - decay) * raw.
    Buffers (batch-norm statistics) are copied. All of it stays on the device: no host sync.
    """

    def __init__(self, generator: nn.Module, decay: float = 0.999, start: int = 0):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.raw = generator
        self.ema = copy.deepcopy(generator).requires_grad_(False)
        self.decay, self.start = decay, start
        self.noise_shape = generator.noise_shape
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return (self.raw if self.training else self.ema)(*args, **kwargs)

    @torch.no_grad()
    def update(self) -> None:
        self.steps += 1
        share = torch.where(self.steps > self.start, 1.0 - self.decay, 1.0)  # of raw, on device
        for average, weight in zip(self.ema.parameters(), self.raw.parameters()):
            average.lerp_(weight, share.to(average.dtype))
        for average, value in zip(self.ema.buffers(), self.raw.buffers()):
            average.copy_(value)


def follow(ema: EMAGenerator, optimizer: torch.optim.Optimizer) -> None:
    """Update the average after every step of the optimizer that trains `ema.raw`; the hook
    survives `optimizer.load_state_dict`, so a resumed trial keeps averaging."""
    optimizer.register_step_post_hook(lambda *_: ema.update())
