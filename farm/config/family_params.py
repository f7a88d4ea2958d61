"""The settings each family kind accepts: `params`, `variants`, `per_dataset` and `search` in
trials/*.yaml are checked against these dataclasses, and every trial builds one.

They live apart from the families' code (farm/families/) so that checking a YAML file and
planning the trials never import torch. `kind:` in trials/*.yaml names one of `PARAMS`;
`MODALITY` says whether a kind grows tables or images, which decides the datasets it takes and
how the driver prepares and exports them. The kind names are stored in finished runs' files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TabularParams:
    """Every setting of a tabular-a trial (farm/families/tabular_a.py); trials/tabular.yaml
    sets them, nothing else."""

    noise_dim: int = 20
    g_hidden: tuple[int, ...] = (64, 128, 256)
    d_hidden: tuple[int, ...] = (256, 128, 64)
    leaky_slope: float = 0.4
    g_output: str = "capped_relu"  # or sigmoid, or blockwise (one-hot per nominal column)
    gumbel_tau: float = 0.2
    d_dropout: float = 0.0
    g_batchnorm: bool = False
    pack: int = 1                 # D judges this many rows at once (PacGAN); 1 = the report
    loss: str = "bce"             # bce (the report) | hinge | wasserstein
    gradient_penalty: float = 0.0
    beta2: float = 0.999
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.5
    batch_size: int = 64
    real_label: float = 0.9
    flip_every: int = 1
    flip_fraction: float = 0.05
    instance_noise: float = 0.0
    minibatch_features: int = 0
    eval_rows: int = 0           # rows sampled per evaluation; 0 = as many as the fit split
    metric_trees: int = 50       # forest size for the per-epoch utility metric
    # select/score's privacy guard: epochs whose rows sit nearer the fit rows than this share
    # of the val rows' distance (dcr/ratio) rank below all others; 0 = off
    privacy_floor: float = 0.9


@dataclass(frozen=True)
class ConfidenceParams(TabularParams):
    """tabular-b (farm/families/tabular_b.py): part A's settings plus part B's; the
    defaults are the report's (section 5.3)."""

    lr_g: float = 5e-4
    lr_d: float = 1e-5
    real_label: float = 0.8          # one-sided smoothing of D's "slot 1 is the black box"
    flip_every: int = 0
    flip_fraction: float = 0.0
    instance_noise: float = 0.2      # std 0.2 / epoch on generated rows for D
    minibatch_features: int = 5      # B = 5, C = 3
    minibatch_kernel: int = 3
    c_low: float = 0.05              # requested confidences drawn from [c_low, c_high)
    c_high: float = 0.8
    conf_net: bool = False           # the proposal: (z, c) -> G's confidence input
    conf_hidden: tuple[int, ...] = (16,)
    conf_weight: float = 0.0         # weight of |S(G(z, c)) - c|^2, S the forest's stand-in
    surrogate_hidden: tuple[int, ...] = (64, 64)
    surrogate_lr: float = 1e-3
    surrogate_warmup: int = 300      # steps distilling the forest before the GAN starts
    surrogate_steps: int = 1         # distillation steps per D step (G exploits a lagging one)
    realness: bool = False           # a part-A critic on real vs generated rows as well
    realness_weight: float = 1.0
    emit_label: bool = False         # G writes the class label too; the critic sees it
    pick_best_of: int = 1            # rows drawn per request at sampling; the closest is kept
    error_tolerance: float = 0.0     # below this confidence error, realism ranks epochs
    eval_requests: int = 40          # rows per requested value in the confidence metrics

    def __post_init__(self):
        if self.pick_best_of < 1:
            raise ValueError(f"pick_best_of must be at least 1 (draws per request), got "
                             f"{self.pick_best_of}")
        if not 0 <= self.error_tolerance < 1:
            raise ValueError(f"error_tolerance must be in [0, 1), got {self.error_tolerance}")


@dataclass(frozen=True)
class ForestParams:
    """tabular-forest (farm/families/tabular_forest.py): Forest-Flow's settings; the defaults
    are the reference code's (ForestDiffusion 1.0.6: n_t 50, duplicate_K 100, XGBoost depth 7,
    eta 0.3, 100 trees, a model per class)."""

    n_t: int = 50                # noise levels (one regressor each, per class)
    duplicate_k: int = 100       # noise draws per real row
    max_depth: int = 7
    eta: float = 0.3
    rounds_per_epoch: int = 10   # boosting rounds every regressor takes per epoch
    per_class: bool = True       # a model per class of the target (the reference's label_y)
    # XGBoost's multi-output trees: one_output_per_tree (the reference's: a tree per column
    # per round) or multi_output_tree (a tree with vector leaves per round: far fewer trees
    # on a wide encoded table)
    multi_strategy: str = "one_output_per_tree"
    max_bin: int = 256           # histogram bins per column (XGBoost's default); the cost of a
                                 # round on a wide encoded table grows with bins x columns
    # the least real rows a leaf averages over (XGBoost's min_child_weight = this x
    # duplicate_k); 0 = XGBoost's default, the reference's. Larger leaves keep the samples
    # from sitting on single train rows (diabetes: DCR 0.69 -> 0.97 of the holdout's at 20)
    min_leaf_rows: float = 0.0
    eval_rows: int = 0           # rows sampled per evaluation; 0 = as many as the fit split
    metric_trees: int = 50       # forest size for the per-epoch utility metric
    # select/score's privacy guard: epochs whose rows sit nearer the fit rows than this share
    # of the val rows' distance (dcr/ratio) rank below all others; 0 = off
    privacy_floor: float = 0.9

    def __post_init__(self):
        if self.n_t < 2 or self.duplicate_k < 1 or self.rounds_per_epoch < 1:
            raise ValueError(f"n_t must be at least 2, duplicate_k and rounds_per_epoch at least "
                             f"1 (got {self.n_t}, {self.duplicate_k}, {self.rounds_per_epoch})")
        if self.multi_strategy not in ("one_output_per_tree", "multi_output_tree"):
            raise ValueError(f"multi_strategy must be one_output_per_tree or multi_output_tree "
                             f"(got {self.multi_strategy!r})")
        if self.max_bin < 2:
            raise ValueError(f"max_bin must be at least 2 (got {self.max_bin})")
        if self.min_leaf_rows < 0 or not 0 <= self.privacy_floor < 2:
            raise ValueError(f"min_leaf_rows must be at least 0 and privacy_floor in [0, 2) "
                             f"(got {self.min_leaf_rows}, {self.privacy_floor})")
        if self.max_depth < 1 or not self.eta > 0:
            raise ValueError(f"max_depth must be at least 1 and eta above 0 (got "
                             f"{self.max_depth}, {self.eta})")


AUTOCAST = ("", "bf16")   # an image trial's `autocast`: none, or bfloat16 (farm/gan/precision.py)


@dataclass(frozen=True)
class StepSettings:
    """How an image trial's GAN steps run on its device, whatever the family (farm/gan/
    precision.py): the same model and step, laid out or rounded for speed. Off by default, so a
    preset that wants them says so; export and checkpoints stay float32, and evaluation too
    unless `eval_autocast` says otherwise."""

    channels_last: bool = False     # G, D and the real images in channels-last memory
    autocast: str = ""              # "bf16": the steps under bfloat16 autocast; "" = off
    # the images an evaluation scores drawn under `autocast` too (export, pictures and
    # checkpoints stay float32): on one CPU core the conditional draw of 128 a class ran 1.6x
    # faster, and the usefulness probe moved by 0.0008 on average, at most 0.003
    # (bench/RESULTS.md, "laptop-16")
    eval_autocast: bool = False

    def __post_init__(self):
        if self.autocast not in AUTOCAST:
            raise ValueError(f"autocast must be one of {AUTOCAST}, got {self.autocast!r}")
        if self.eval_autocast and not self.autocast:
            raise ValueError("eval_autocast draws the scored images under the steps' autocast: "
                             "set autocast (bf16) too")


@dataclass(frozen=True)
class ImageParams(StepSettings):
    """Every setting of a fruit-pairs or spiked trial (farm/families/fruit_pairs.py,
    spiked.py); the defaults are the fruit report's."""

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
    # fruit-pairs only: epochs one pair first grows on every class's fit images, once per
    # setting and seed, before each class's pair fine-tunes from it (Wang et al., ECCV 2018,
    # "Transferring GANs"); 0 = every pair grows from scratch, as in the report
    shared_start: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.shared_start < 0:
            raise ValueError(f"shared_start must be 0 (off) or a number of epochs, got "
                             f"{self.shared_start}")


@dataclass(frozen=True)
class ConditionalParams(StepSettings):
    """Every setting of a conditional trial (farm/families/conditional.py). Adam (0.0, 0.999)
    with D's rate four times G's (the two time-scale rule, as in SAGAN), one D step per G step."""

    g_width: int = 64
    d_width: int = 64
    z_dim: int = 128
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.999
    batch_size: int = 32
    ema_decay: float = 0.999        # per G step
    ema_start: int = 1000           # G steps during which the average is a copy of G
    diffaug: str = "color,translation,cutout"   # "" = off
    lecam: float = 0.0              # LeCam weight on D's loss; 0 = off (0.3 in its BigGAN runs)
    consistency: float = 0.0        # consistency weight on real images; 0 = off (10 in the paper)
    consistency_augment: str = "translation,cutout"   # its transform T, a DiffAugment policy
    transition_start: int = 0       # G step at which the class starts to count ...
    transition_end: int = 0         # ... and from which it counts fully; 0 = off (always)
    eval_images: int = 128          # per class (trials/images.yaml says why)
    kid_subsets: int = 20
    grid_images: int = 8            # per class: one grid row each

    def __post_init__(self):
        super().__post_init__()
        check_transition(self.transition_start, self.transition_end)


def check_transition(start: int, end: int) -> None:
    """`end` 0 is off; otherwise 0 <= start < end."""
    if end and not 0 <= start < end:
        raise ValueError(f"transition_start ({start}) must be in [0, transition_end ({end}))")


class ByKind(dict):
    """A table keyed by family kind that also answers to a kind's former name: finished runs
    (run.json, tuner.pkl, generator files) hold the names the kinds had before they took their
    family's name (`FORMER_KIND_NAMES`)."""

    def __getitem__(self, kind):
        return super().__getitem__(kind_name(kind))

    def __contains__(self, kind):
        return super().__contains__(kind_name(kind))

    def get(self, kind, default=None):
        return super().get(kind_name(kind), default)


FORMER_KIND_NAMES = {"tabular": "tabular-a", "image-pair": "fruit-pairs",
                     "image-spiked": "spiked", "image-conditional": "conditional"}


def kind_name(kind: str) -> str:
    """A kind's name now, given its name now or its former one."""
    return FORMER_KIND_NAMES.get(kind, kind)


SHARED_START_KINDS = ("fruit-pairs",)  # the kinds whose trials can begin from a shared start
GANG_KINDS = ("tabular-a",)  # the kinds whose trials of one shape can grow as one stacked model
CPU_ONLY_KINDS = ("tabular-forest",)  # XGBoost on one thread: --gpus-per-trial gives them no GPU


PARAMS: dict[str, type] = ByKind({
    "tabular-a": TabularParams,
    "tabular-b": ConfidenceParams,
    "tabular-forest": ForestParams,
    "fruit-pairs": ImageParams,
    "spiked": ImageParams,
    "conditional": ConditionalParams,
})
MODALITY = ByKind({"tabular-a": "table", "tabular-b": "table", "tabular-forest": "table",
                   "fruit-pairs": "image",
                   "spiked": "image", "conditional": "image"})


def params_from(kind: str, values: dict[str, Any]):
    """Build a kind's params dataclass, turning YAML lists into tuples."""
    return PARAMS[kind](**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
