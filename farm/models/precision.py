"""How a network's training steps are laid out and rounded on their device: the pieces every
trainer shares (an image trial's GAN steps, farm/gan/precision.py; the evaluator's classifiers).

`channels_last` puts a network and its image batches in channels-last memory, which oneDNN's CPU
convolutions and cuDNN's tensor cores prefer; `autocast: bf16` runs the steps under bfloat16
autocast (weights and optimizer state stay float32; bf16 has float32's range, so no loss
scaling).
"""

from __future__ import annotations

import contextlib

import torch

AUTOCAST_DTYPES = {"": None, "bf16": torch.bfloat16}


def channels_last(x):
    """Image batches (4-d) channels-last; anything else (labels, tables) as it is."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def autocast_steps(autocast: str, device: torch.device):
    """The context training steps run in: bf16 autocast, or nothing. Autocast's weight cache is
    off: it keeps each weight's bf16 copy until the context exits, and optimizer steps inside it
    change the weights, so with the cache every forward pass in one context would use the
    weights it began with."""
    dtype = AUTOCAST_DTYPES[autocast]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype, cache_enabled=False)
