"""The image classifiers' settings, checked without torch: the architectures a classifier may
be (farm/models/classifier.py builds them), the judge's (`data.images.judge` in trials/*.yaml;
farm/metrics/judge.py) and the evaluator's (`evaluator:`; farm/evaluation/evaluator.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from farm.config.family_params import AUTOCAST
from farm.infra.errors import ConfigError, settings_from

ARCHS = ("tiny", "resnet18", "resnet34")


def describe_arch(arch: str, width: int) -> str:
    """A classifier's name in logs and protocol lines: the width only where it is not
    torchvision's (the `tiny` net has none)."""
    return arch if width == 64 or arch == "tiny" else f"{arch} width {width}"


@dataclass(frozen=True)
class JudgeConfig:
    """How to build and train the judge. ``tiny`` is a 4-conv net for tests and smoke presets."""

    arch: str = "resnet18"
    # For 32-64 px inputs: a 3x3 stride-1 first conv and no maxpool (the CIFAR-style stem), so
    # the last ResNet stage still sees 8x8 maps at 64 px instead of 2x2. About 16x the FLOPs
    # of the ImageNet stem; False keeps torchvision's 7x7 stride-2 conv + maxpool.
    small_input_stem: bool = True
    width: int = 64  # the ResNet's first-stage channels (torchvision's 64; 32 is 4x cheaper)
    epochs: int = 30
    batch_size: int = 64
    # AdamW with a per-step cosine schedule: works from scratch for the tiny net and the
    # ResNets alike with ~10 steps per epoch, where SGD would need its lr and warm-up tuned.
    lr: float = 1e-3
    weight_decay: float = 0.05
    augment: bool = True  # random horizontal flip + random crop (reflect-padded by 4 px)
    seed: int = 0
    val_fraction: float = 0.1  # stratified slice of the TRAIN split that picks the best epoch

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ConfigError(f"judge arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.epochs < 1 or self.batch_size < 2 or self.width < 4:
            raise ConfigError("judge needs epochs >= 1, batch_size >= 2 and width >= 4 "
                              f"(got {self.epochs}, {self.batch_size} and {self.width})")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError(f"judge needs lr > 0 and weight_decay >= 0 "
                              f"(got {self.lr} and {self.weight_decay})")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"judge val_fraction must be in [0, 1), got {self.val_fraction}")


MIXES = ("extra", "pretrain", "distill", "share")
POOLS = ("all", "chosen")  # which pools the classifiers train on: every one, or the farm's pick
# how the farm chooses its best pool on the val slice: a classifier trained on each pool's pixels
# (the CAS protocol, one seed), or the judge-feature probe every trial is scored by
CHOOSE_BY = ("classifier", "probe")


@dataclass(frozen=True)
class EvaluatorConfig:
    """How the evaluator's classifiers are built and trained (`evaluator:` in trials/*.yaml)."""

    arch: str = "resnet34"          # the fruit report's evaluator: its discriminator's ResNet34
    small_input_stem: bool = False
    width: int = 64                 # the ResNet's first-stage channels (torchvision's 64)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3                # AdamW, cosine schedule per step
    weight_decay: float = 0.05
    augment: bool = True            # random flip + reflect-padded crop
    mix: str = "extra"              # how real + synthetic trains: one of MIXES
    synthetic_batch: int = 32       # extra / distill: synthetic images on top of each real batch
    distill_weight: float = 0.5     # distill: the teacher's share of a synthetic image's target
    separate_bn: bool = False       # synthetic batches through their own batch-norm statistics
    synthetic_share: float = 0.25   # share: the synthetic part of every real + synthetic pass
    seeds: int = 3                  # classifier seeds per figure (seed, seed + 1, ...)
    pools: str = "all"              # all: CAS and real + synthetic for every pool; chosen: for
                                    # the pool the farm chose only (about half the classifiers)
    choose_by: str = "classifier"   # the best pool: the highest val accuracy of a classifier
                                    # trained on its images alone; probe: the judge-feature probe
    choice_epochs: int = 0          # passes for choose_by classifier's classifiers (0: epochs)
    cas_epochs: int = 0             # passes' worth of steps for CAS's classifiers, on a pool
                                    # alone (0: epochs)
    workers: int = 0                # 0: one per GPU (up to 8) on a GPU cluster, else one CPU worker
    cpus_per_worker: int = 0        # 0: a whole node's CPUs for a lone CPU worker, else 1
    channels_last: bool = False     # the classifier and its batches in channels-last memory
    autocast: str = ""              # "bf16": training steps under bfloat16 autocast; testing,
                                    # the teacher's targets and the weights stay float32
    seed: int = 0

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ConfigError(f"evaluator.arch must be one of {', '.join(ARCHS)}, "
                              f"got {self.arch!r}")
        for name in ("epochs", "batch_size", "width"):
            if getattr(self, name) < {"batch_size": 2, "width": 4}.get(name, 1):
                raise ConfigError(f"evaluator.{name} is too small: {getattr(self, name)}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError("evaluator needs lr > 0 and weight_decay >= 0")
        if self.mix not in MIXES:
            raise ConfigError(f"evaluator.mix must be one of {', '.join(MIXES)}, got {self.mix!r}")
        if self.pools not in POOLS:
            raise ConfigError(f"evaluator.pools must be one of {', '.join(POOLS)}, "
                              f"got {self.pools!r}")
        if self.choose_by not in CHOOSE_BY:
            raise ConfigError(f"evaluator.choose_by must be one of {', '.join(CHOOSE_BY)}, "
                              f"got {self.choose_by!r}")
        if self.synthetic_batch < 1 or self.seeds < 1:
            raise ConfigError("evaluator.synthetic_batch and evaluator.seeds must be at least 1, "
                              f"got {self.synthetic_batch} and {self.seeds}")
        if self.separate_bn and self.mix not in ("extra", "distill"):
            raise ConfigError(f"evaluator.separate_bn needs mix extra or distill (synthetic "
                              f"images in batches of their own), not {self.mix!r}")
        if not 0 <= self.distill_weight <= 1:
            raise ConfigError(f"evaluator.distill_weight must be in [0, 1], got "
                              f"{self.distill_weight}")
        if not 0 < self.synthetic_share < 1:
            raise ConfigError("evaluator.synthetic_share must be between 0 and 1 (the synthetic "
                              f"part of every real + synthetic pass), got {self.synthetic_share}")
        negative = [name for name in ("workers", "cpus_per_worker", "choice_epochs", "cas_epochs")
                    if getattr(self, name) < 0]
        if negative:
            raise ConfigError(f"evaluator.{negative[0]} must be >= 0, got "
                              f"{getattr(self, negative[0])}")
        if self.autocast not in AUTOCAST:
            raise ConfigError(f"evaluator.autocast must be one of "
                              f"{', '.join(repr(a) for a in AUTOCAST)}, got {self.autocast!r}")

    @property
    def choice_passes(self) -> int:
        """Passes of the pool choice's classifiers: `choice_epochs`, else `epochs`."""
        return self.choice_epochs or self.epochs

    @property
    def cas_passes(self) -> int:
        """Passes' worth of steps of a CAS classifier (a pool alone): `cas_epochs`, else
        `epochs`."""
        return self.cas_epochs or self.epochs

    def describe(self) -> str:
        """The protocol in a line, for the summary and the report."""
        how = {"extra": f"the ceiling's real schedule whole, {self.synthetic_batch} synthetic "
                        "images added to every real batch",
               "pretrain": "pretrained on the pool, then fine-tuned with the ceiling's real "
                           "schedule",
               "distill": f"as extra, synthetic targets {self.distill_weight:g} from a teacher "
                          "trained on real images only",
               "share": f"every pass each real image once, {self.synthetic_share:g} of it "
                        "drawn from the pool"}[self.mix]
        bn = ", separate batch-norm statistics for synthetic images" if self.separate_bn else ""
        steps = f", {self.autocast} autocast" if self.autocast else ""
        alone = [f"{who} {passes}" for who, passes in (("CAS", self.cas_passes),
                                                         ("the pool choice's classifiers",
                                                          self.choice_passes))
                 if passes != self.epochs]
        choice = f" ({', '.join(alone)})" if alone else ""
        return (f"{describe_arch(self.arch, self.width)}, {self.epochs} passes over the real "
                f"train split{choice}{steps}, {self.seeds} classifier seed(s); real + synthetic: "
                f"{self.mix} ({how}{bn})")


def evaluator_config(values: dict | None) -> EvaluatorConfig:
    return settings_from(EvaluatorConfig, values, "evaluator")
