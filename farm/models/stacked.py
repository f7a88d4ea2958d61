"""Many small models of one shape as one model: every parameter gains a leading member axis.

A tabular GAN's MLPs are so small that a CPU step is mostly Python and dispatch overhead, not
arithmetic; M members stacked into [M, ...] weights run one batched matmul per layer instead of
M small ones (the model-ensembling trick of torch.func.stack_module_state, written out as plain
modules so that batch norm's running statistics, double backward for a gradient penalty and the
optimizer need no functional transforms). Inputs are [M, rows, features]; member i sees only its
own weights and its own rows, so its gradients are exactly those it would get alone.

`stack` builds the stacked twin of one template module from the members' own modules (each
built as a trial alone would build it, so each keeps its own initialisation); the twin's state
dict has the template's keys with the member axis in front, so `member_state` gives back an
ordinary checkpoint that the export, `sample` and every other reader of a trial loads unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn


class StackedLinear(nn.Module):
    """M `nn.Linear` layers of one shape: [M, n, in] -> [M, n, out].

    The weight is held as [M, in, out], so the forward matmul and both of its backward ones
    read and write contiguous memory (with nn.Linear's [out, in] layout the weight's gradient
    comes out transposed, and every add on it takes the slow strided path: 3x slower on a CPU).
    The state dict still holds nn.Linear's layout, [M, out, in], so a member's slice is an
    ordinary nn.Linear's weight."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.weight = nn.Parameter(weight.transpose(1, 2).contiguous())  # [M, in, out]
        self.bias = nn.Parameter(bias) if bias is not None else None  # [M, out]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "weight"] = destination[prefix + "weight"].transpose(1, 2)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "weight"
        if key in state_dict:
            state_dict = {**state_dict, key: state_dict[key].transpose(1, 2)}
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class StackedBatchNorm(nn.Module):
    """M `nn.BatchNorm1d` layers: each member normalises over its own rows and keeps its own
    running statistics, with nn.BatchNorm1d's arithmetic (biased variance to normalise, the
    unbiased one into the running average)."""

    def __init__(self, template: nn.BatchNorm1d, members: Sequence[nn.BatchNorm1d]):
        super().__init__()
        self.eps, self.momentum = template.eps, template.momentum
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in members]))
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in members]))
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, torch.stack([getattr(m, name).clone() for m in members]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [M, n, features]
        if self.training:  # the variance written out: torch.var over the middle axis of a
            # [M, n, features] tensor takes the strided path, 14x slower on a CPU
            mean = x.mean(dim=1)
            var = (x - mean.unsqueeze(1)).square().mean(dim=1)
            with torch.no_grad():
                n = x.shape[1]
                self.num_batches_tracked.add_(1)
                unbiased = var * (n / max(n - 1, 1))
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(unbiased.detach(), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight / torch.sqrt(var + self.eps)
        return (x - mean.unsqueeze(1)) * scale.unsqueeze(1) + self.bias.unsqueeze(1)


def stack(members: Sequence[nn.Module]) -> nn.Module:
    """The stacked twin of `members` (modules of one architecture): linear and batch-norm layers
    become their stacked forms, every other parameter gains the member axis (a minibatch
    discrimination tensor, which broadcasts over it), and parameter-free layers are shared."""
    template = members[0]
    twin = copy.deepcopy(template)
    for name, module in template.named_modules():
        if not name:
            continue
        parts = [m.get_submodule(name) for m in members]
        if isinstance(module, nn.Linear):
            bias = torch.stack([p.bias.detach() for p in parts]) if module.bias is not None \
                else None
            _replace(twin, name, StackedLinear(torch.stack([p.weight.detach() for p in parts]),
                                               bias))
        elif isinstance(module, nn.BatchNorm1d):
            _replace(twin, name, StackedBatchNorm(module, parts))
        elif isinstance(module, nn.modules.batchnorm._NormBase):
            raise TypeError(f"cannot stack {type(module).__name__} ({name})")
        else:
            target = twin.get_submodule(name)
            for key, _ in module.named_parameters(recurse=False):
                setattr(target, key, nn.Parameter(torch.stack(
                    [getattr(p, key).detach() for p in parts])))
    return twin.to(next(template.parameters()).device)


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


def members_of(twin: nn.Module) -> int:
    return next(twin.parameters()).shape[0]


def member_state(twin: nn.Module, index: int) -> dict[str, torch.Tensor]:
    """Member `index`'s weights and buffers under the template's keys: an ordinary state dict."""
    return {key: value[index].detach().clone() for key, value in twin.state_dict().items()}
