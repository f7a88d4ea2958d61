"""Kernel Inception Distance (Binkowski et al. 2018) in any feature space.

The farm scores generated images in its own judge's penultimate features rather than
Inception's (no pretrained weights, and Inception knows nothing about 30 fruit classes). KID is
used instead of FID because its estimator is unbiased: with ~25 real images per class, FID's
bias would swamp the differences between trials, while KID stays comparable across sample
sizes. The value is the unbiased MMD^2 with the cubic polynomial kernel
``k(x, y) = (gamma x.y + coef) ** degree`` (``gamma`` defaults to 1 / dim), averaged over
random subsets. Pure torch: runs wherever the features live, accumulating in float64.
`diversity` says, in the same space, whether a generator has collapsed onto one picture.
"""

from __future__ import annotations

import torch

__all__ = ["diversity", "kid", "mmd2_unbiased", "polynomial_kernel"]


def _as_features(x, name: str) -> torch.Tensor:
    """``x`` as a finite float64 [n, d] tensor with n >= 2 (the unbiased estimate needs pairs)."""
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"{name}: expected features of shape [n, d], got {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"{name}: need at least 2 samples, got {x.shape[0]}")
    x = x.to(torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return x


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature sizes differ: {x.shape[1]} (real) vs {y.shape[1]} (fake)")
    if x.device != y.device:
        raise ValueError(f"features on different devices: {x.device} vs {y.device}")


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, degree: int = 3,
                      gamma: float | None = None, coef: float = 1.0) -> torch.Tensor:
    """Gram matrix ``(gamma x @ y.T + coef) ** degree``; gamma defaults to 1 / dim."""
    if gamma is None:
        gamma = 1.0 / x.shape[1]
    return (gamma * (x @ y.T) + coef) ** degree


def mmd2_unbiased(x, y, degree: int = 3, gamma: float | None = None,
                  coef: float = 1.0) -> float:
    """Unbiased MMD^2 between two samples (sizes may differ): diagonals left out of k(x,x), k(y,y).

    Can be slightly negative when both samples come from the same distribution.
    """
    x, y = _as_features(x, "real features"), _as_features(y, "fake features")
    _check_pair(x, y)
    return float(_mmd2(x, y, degree, gamma, coef))


def _mmd2(x: torch.Tensor, y: torch.Tensor, degree, gamma, coef) -> torch.Tensor:
    """The estimate as a 0-d tensor on the features' device (read back by the caller)."""
    m, n = x.shape[0], y.shape[0]
    k_xx = polynomial_kernel(x, x, degree, gamma, coef)
    k_yy = polynomial_kernel(y, y, degree, gamma, coef)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef)
    xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return xx + yy - 2 * k_xy.mean()


def kid(real_feats, fake_feats, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
        gamma: float | None = None, coef: float = 1.0,
        generator: torch.Generator | None = None) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over ``subsets`` random subsets of each sample.

    Each subset draws ``min(subset_size, len(real), len(fake))`` rows without replacement from
    each side, so a class of ~25 images still works. When that size equals both sample sizes,
    every subset is the whole sample and std is 0. std is the spread over subsets (population
    std, as torchmetrics reports), not a standard error. ``generator`` seeds the subset draws
    (it may live on the CPU or on the features' device); without one, the global RNG is used.
    """
    x, y = _as_features(real_feats, "real features"), _as_features(fake_feats, "fake features")
    _check_pair(x, y)
    if subsets < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets}")
    if subset_size < 2:
        raise ValueError(f"subset_size must be at least 2, got {subset_size}")
    size = min(subset_size, x.shape[0], y.shape[0])
    rng_device = generator.device if generator is not None else torch.device("cpu")
    scores = []
    for _ in range(subsets):
        i = torch.randperm(x.shape[0], generator=generator, device=rng_device)[:size]
        j = torch.randperm(y.shape[0], generator=generator, device=rng_device)[:size]
        scores.append(_mmd2(x[i.to(x.device)], y[j.to(y.device)], degree, gamma, coef))
    values = torch.stack(scores)  # one read-back for all subsets
    return float(values.mean()), float(values.std(correction=0))


def diversity(real_feats, fake_feats) -> float:
    """How varied the generated images are, next to the real ones: the mean distance between
    two generated images' features over the mean distance between two real images' features.

    About 1 for a generator as varied as the class, near 0 for one that draws the same picture
    whatever its noise (mode collapse). KID alone cannot tell that apart from one good picture:
    a collapsed pair can have a low KID and a judge that recognises every image.
    """
    x, y = _as_features(real_feats, "real features"), _as_features(fake_feats, "fake features")
    _check_pair(x, y)

    def spread(z: torch.Tensor) -> torch.Tensor:
        n = z.shape[0]
        return torch.cdist(z, z).sum() / (n * (n - 1))

    real = spread(x)
    return float(spread(y) / real) if real > 0 else float("nan")
