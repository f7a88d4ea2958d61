"""Usefulness: how well a trial's images teach a classifier to recognise real images it never saw.

KID and the judge's accuracy do not rank which checkpoint's images teach a classifier
(bench/RESULTS.md: Spearman +0.05 and -0.15 within class; Ravuri & Vinyals 2019 found CAS and
FID correlate at 0.16). So every image trial is also scored the way its images will be used: a
linear probe (multinomial logistic regression on standardised features, in the judge's
penultimate space) is trained on the generated images, with their requested classes as labels,
and tested on the val slice: real train images that no GAN and no judge trained on. A trial
that makes only some classes (a per-class pair) is scored with the real images of the other
classes in their place, so the probe asks of each class only what its generator made.

`useful/<class>` is the probe's mean probability of the right class on that class's val images
(a smooth score: with about five val images a class, accuracy moves in steps of 0.2), and
`useful` their mean over the classes the trial makes. `useful_accuracy` is the probe's plain
accuracy on those val images. Pure torch, full-batch L-BFGS: deterministic, tens of
milliseconds for a few hundred images.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

PROBE_DECAY = 1e-3   # L2 on the probe's weights (standardised features, mean loss)
PROBE_STEPS = 50     # L-BFGS iterations


def fit_probe(x: torch.Tensor, y: torch.Tensor, classes: int) -> tuple[torch.Tensor, ...]:
    """(mean, std, weight, bias) of a logistic regression on x [N, F] -> y [N]."""
    x = x.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    weight = torch.zeros(z.shape[1], classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=PROBE_STEPS, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        value = F.cross_entropy(z @ weight + bias, y) + PROBE_DECAY * weight.pow(2).sum()
        value.backward()
        return value

    with torch.enable_grad():
        opt.step(loss)
    return mean, std, weight.detach(), bias.detach()


def probe_probs(probe: tuple[torch.Tensor, ...], x: torch.Tensor) -> torch.Tensor:
    mean, std, weight, bias = probe
    return (((x.double() - mean) / std) @ weight + bias).softmax(1)


def usefulness(generated: Mapping[int, torch.Tensor], real_fit: Mapping[int, np.ndarray],
               val_features: np.ndarray, val_labels: np.ndarray, names) -> dict[str, float]:
    """Scores of a trial's generated features {class: [n, F]} (judge space), with the real fit
    features {class: [m, F]} standing in for the classes it does not make; tested on the val
    slice. Empty when there is no val slice."""
    if val_features is None or len(val_labels) == 0 or not generated:
        return {}
    xs, ys = [], []
    for label in range(len(names)):
        features = generated.get(label)
        if features is None:
            # a copy: Ray hands read-only arrays
            features = torch.as_tensor(np.array(real_fit[label]))
        xs.append(features.detach().cpu().double())
        ys.append(torch.full((len(features),), label, dtype=torch.long))
    probe = fit_probe(torch.cat(xs), torch.cat(ys), len(names))
    val_x = torch.as_tensor(np.array(val_features))
    val_y = torch.as_tensor(np.array(val_labels), dtype=torch.long)
    probs = probe_probs(probe, val_x)
    right = probs[torch.arange(len(val_y)), val_y]
    hit = probs.argmax(1) == val_y
    out, per_class, made_hits = {}, [], []
    for label in sorted(generated):
        mine = val_y == label
        if not mine.any():
            continue
        value = float(right[mine].mean())
        out[f"useful/{names[label]}"] = value
        per_class.append(value)
        made_hits.append(hit[mine])
    if per_class:
        out["useful"] = float(np.mean(per_class))
        out["useful_accuracy"] = float(torch.cat(made_hits).double().mean())
    return out
