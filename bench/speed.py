"""Speed benchmark: the farm's training, scoring and evaluator throughput on one device.

In one run, on the same device:

* every image family's training step (`fruit-pairs`, `spiked`, `conditional`; the farm's own
  models, Game and `gan_epoch` on device-resident images) in images per second, beside a plain
  reference loop written the usual way (a DataLoader over float32 images on the host, fp32, the
  same networks, optimizers and loss written inline, `.item()` on both losses every step);
* one evaluation of each image family (its `evaluate`: KID and judge accuracy per class);
* the tabular families' time per epoch on German credit (every variant of the family);
* with `--evaluator`, the evaluator's images per second as a Ray Train job with 1 and several
  workers (starts an embedded Ray);
* with `--profile DIR`, a PyTorch profile of one image trial (a few steps and one evaluation);
* with `--modes fp32,bf16,channels-last,compile`, the farm's own step of every image family
  again under bf16 autocast, with G, D and the images in channels-last memory, and with G and D
  compiled by torch.compile (`a+b` combines modes); a mode that fails is a row with its error.

The images are random uint8 pictures (no dataset needed); only the tabular section reads a file.
Timings on CUDA are bracketed by torch.cuda.synchronize() around the timed region only. Prints
a markdown report (device, command, date, versions); `--out FILE` writes it too, and every row
is also printed as a `speed-record {json}` line as soon as it is measured (bench/gpu_check.py
reads them, also from a run stopped at its time limit). Asserts nothing about the numbers.

    .venv/bin/python bench/speed.py                      # CPU here: about 2 minutes
    .venv/bin/python bench/speed.py --preset smoke       # a check (small models)
    .venv/bin/python bench/speed.py --device cuda --steps 50 --evaluator --profile bench/profiles
    .venv/bin/python bench/speed.py --device cuda --steps 50 --modes-only \
        --modes fp32,bf16,channels-last,compile,bf16+channels-last+compile
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common import SPEED_RECORD, command_line, emit, git_commit, host_cpu  # noqa: E402
from farm.config.family_params import MODALITY, params_from  # noqa: E402
from farm.config.load import load_config  # noqa: E402
from farm.config.plan import plan_trials  # noqa: E402
from farm.data.images import to_unit_range  # noqa: E402
from farm.data.trial_data import ImageData  # noqa: E402
from farm.families.kinds import kind_of  # noqa: E402
from farm.gan.diffaugment import augmented  # noqa: E402
from farm.gan.precision import StepPrecision  # noqa: E402
from farm.gan.gan_loop import gan_epoch, shuffled_batches  # noqa: E402
from farm.metrics.judge import Judge  # noqa: E402
from farm.models.classifier import build_model  # noqa: E402

IMAGE_FAMILIES = ("fruit-pairs", "spiked", "conditional")
TABLE_FAMILIES = ("tabular-a", "tabular-b")
SHARED_DATA = Path(os.environ.get("FARM_SHARED_DATA", REPO.parent / "shared" / "data"))
SIZE = 64  # the report's generators (G1, G2, G2a) make 64x64 images
MODES = ("fp32", "bf16", "channels-last", "compile")  # what --modes combines with '+'


# --------------------------------------------------------------------------- device and clock


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device")
    return torch.device(name)


def device_words(device: torch.device) -> str:
    host = f"{host_cpu()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return (f"{torch.cuda.get_device_name(device)} ({props.total_memory / 2**30:.0f} GiB, "
                f"CUDA {torch.version.cuda}); host {host}")
    return f"{host} (CPU only)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> tuple[float, object]:
    """Seconds of `fn()` with the device idle before and drained after (CUDA is asynchronous)."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


RESULTS = REPO / "bench" / "results" / "speed.json"
RECORDS: list[dict] = []  # every row measured, for --json at the end


def record(section: str, **fields) -> None:
    """Print one measured row as JSON at once, so a caller that stops this run at a time limit
    (bench/gpu_check.py) keeps the rows measured so far."""
    row = {"section": section, **fields}
    RECORDS.append(row)
    print(SPEED_RECORD + json.dumps(row), flush=True)


def write_json(path: Path, device, args) -> None:
    """The headline figures: every measured row with the commit, command and device."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"commit": git_commit(), "command": command_line(),
                                "device": device_words(device), "threads": args.threads,
                                "preset": args.preset, "records": RECORDS}, indent=2) + "\n")


# --------------------------------------------------------------------------- planned trials


def planned(config: dict, family: str, dataset: str, classes=()) -> list[dict]:
    """The family's trials as `farm.config.plan` builds them (params < per_dataset < variant < searched),
    the first one of each variant, on `dataset`."""
    section = config["families"][family]
    modality = MODALITY[section["kind"]]
    trials = plan_trials({family: section}, 0, {modality: [dataset]}, {dataset: tuple(classes)})
    firsts: dict = {}
    for trial in trials:
        firsts.setdefault(trial["variant"], trial)
    return list(firsts.values())


def params_of(trial: dict, batch_size: int | None):
    values = dict(trial["params"])
    if batch_size:
        values["batch_size"] = batch_size
    return params_from(trial["kind"], values)


# --------------------------------------------------------------------------- synthetic images


def synthetic_images(classes: int, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 NHWC pictures, `per_class` per class, kept as the driver keeps images."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes, dtype=np.int64), per_class)
    images = rng.integers(0, 256, (len(labels), SIZE, SIZE, 3), dtype=np.uint8)
    return images, labels


def judge_words(judge_cfg: dict) -> str:
    from farm.data.prepare_images import judge_config

    config = judge_config(judge_cfg)
    return f"{config.arch}, small_input_stem={config.small_input_stem}"


def untrained_judge(images, labels, names, judge_cfg: dict, device) -> tuple[dict, dict]:
    """A judge of the experiment's architecture, randomly initialised (timing only: scoring an
    image costs the same trained or not), its payload and each class's real features."""
    from farm.data.prepare_images import judge_config

    config = judge_config(judge_cfg)
    torch.manual_seed(0)
    model = build_model(config.arch, len(names), config.small_input_stem)
    judge = Judge(model, config, len(names), names, device)
    features = judge.features(to_unit_range(images, device)).cpu().numpy()
    real = {label: features[labels == label] for label in range(len(names))}
    return judge.payload(), real


def counted(batches, counter: list):
    """Pass batches through, adding their images to counter[0] and their number to counter[1]."""
    for batch in batches:
        counter[0] += (batch[0] if isinstance(batch, tuple) else batch).shape[0]
        counter[1] += 1
        yield batch


def train_steps(pair, real, batch_size: int, order: torch.Generator, game, steps: int,
                first_epoch: int) -> tuple[int, int]:
    """`steps` steps as the trainable takes them: one `gan_epoch` per pass of `shuffled_batches`
    over the device-resident rows (its host sync at the end of each), the last pass cut short.
    Returns (images, epochs)."""
    counter, epoch = [0, 0], first_epoch
    while counter[1] < steps:
        epoch_batches = itertools.islice(shuffled_batches(real, batch_size, order),
                                         steps - counter[1])
        gan_epoch(pair, counted(epoch_batches, counter), game, epoch)
        epoch += 1
    return counter[0], epoch - first_epoch


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches `shuffled_batches` yields per pass (it drops a ragged last batch)."""
    return n // batch_size if n > batch_size else 1


# --------------------------------------------------------------------------- image families


def built_trial(trial, params, data, device):
    """What the trainable builds before its first epoch: (view, pair, real rows, game, order)."""
    kind = kind_of(trial["kind"])
    view = kind.view(data, trial)
    torch.manual_seed(0)
    pair = kind.build(params, view, device)
    real = kind.real_rows(view, device)
    game = kind.game(params, view, pair, device)
    return view, pair, real, game, torch.Generator().manual_seed(0)


def farm_steps(trial, params, data, device, steps, warmup):
    """The farm's step: the family's build/game/real_rows and `gan_epoch` epoch after epoch as
    the trainable runs them. Returns (seconds, images, pair, view, steps per epoch)."""
    view, pair, real, game, order = built_trial(trial, params, data, device)
    precision = StepPrecision.of(params)  # the trial's own channels_last and autocast
    precision.lay_out(pair)
    real = precision.rows(real)
    epochs = 0
    with precision.steps(device):
        if warmup:
            _, epochs = train_steps(pair, real, params.batch_size, order, game, warmup, 1)
        seconds, (images, _) = timed(lambda: train_steps(pair, real, params.batch_size, order,
                                                         game, steps, epochs + 1), device)
    n = (real[0] if isinstance(real, tuple) else real).shape[0]
    return seconds, images, pair, view, steps_per_epoch(n, params.batch_size)


def reference_game(kind: str, G, D, classes: int, real_label: float, device):
    """The same game written inline the usual way: (sample, d_loss, g_loss)."""
    if kind == "fruit-pairs":
        def sample(n):
            return (torch.randn(n, *G.noise_shape, device=device),)

        def d_loss(x, y, fake, inputs):
            real_logits, fake_logits = D(x), D(fake)
            return (F.binary_cross_entropy_with_logits(real_logits,
                                                       torch.full_like(real_logits, real_label))
                    + F.binary_cross_entropy_with_logits(fake_logits,
                                                         torch.zeros_like(fake_logits)))

        def g_loss(fake, inputs):
            logits = D(fake)
            return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    elif kind == "spiked":
        def sample(n):
            return (torch.randn(n, *G.noise_shape, device=device),
                    torch.randint(classes, (n,), device=device))

        def d_loss(x, y, fake, inputs):
            fake_class = torch.full((fake.shape[0],), classes, device=device)
            return F.cross_entropy(D(x), y) + F.cross_entropy(D(fake), fake_class)

        def g_loss(fake, inputs):
            return F.cross_entropy(D(fake), inputs[1])
    else:  # conditional: hinge on the projection discriminator
        def sample(n):
            return (torch.randn(n, *G.noise_shape, device=device),
                    torch.randint(classes, (n,), device=device))

        def d_loss(x, y, fake, inputs):
            return F.relu(1 - D(x, y)).mean() + F.relu(1 + D(fake, inputs[1])).mean()

        def g_loss(fake, inputs):
            return -D(fake, inputs[1]).mean()
    return sample, d_loss, g_loss


def reference_steps(trial, params, data, device, steps, warmup):
    """A plain loop: DataLoader over float32 host images, `.to(device)` per batch, fp32, the same
    networks and optimizers (built by the family, so identical), `.item()` every step."""
    kind = kind_of(trial["kind"])
    view = kind.view(data, trial)
    torch.manual_seed(0)
    pair = kind.build(params, view, device)
    G, D = pair.generator, augmented(pair.discriminator, getattr(params, "diffaug", ""))
    rows = (data.labels == view.label) if trial["kind"] == "fruit-pairs" else slice(None)
    x = to_unit_range(data.images[rows])  # float32 NCHW in [-1, 1], on the host
    y = torch.as_tensor(data.labels[rows])
    loader = DataLoader(TensorDataset(x, y), batch_size=params.batch_size, shuffle=True,
                        drop_last=len(x) > params.batch_size)
    sample, d_loss_of, g_loss_of = reference_game(trial["kind"], G, D, len(data.classes),
                                                  getattr(params, "real_label", 1.0), device)
    losses = []

    def run(n, counter):
        G.train()
        D.train()
        for xb, yb in itertools.islice(itertools.chain.from_iterable(
                loader for _ in itertools.count()), n):
            xb, yb = xb.to(device), yb.to(device)
            counter[0] += xb.shape[0]
            inputs = sample(xb.shape[0])
            fake = G(*inputs)
            d_loss = d_loss_of(xb, yb, fake.detach(), inputs)
            pair.d_opt.zero_grad()
            d_loss.backward()
            pair.d_opt.step()
            g_loss = g_loss_of(fake, inputs)
            pair.g_opt.zero_grad()
            g_loss.backward()
            pair.g_opt.step()
            losses.append((d_loss.item(), g_loss.item()))  # the usual per-step host sync

    if warmup:
        run(warmup, [0])
    counter = [0]
    seconds, _ = timed(lambda: run(steps, counter), device)
    return seconds, counter[0]


def networks(trial, pair) -> str:
    G = getattr(pair.generator, "raw", pair.generator)
    p = trial["params"]
    g = p.get("generator", type(G).__name__)
    d = p.get("discriminator", type(pair.discriminator).__name__)
    extra = f", diffaug {p['diffaug']}" if p.get("diffaug") else ""
    return f"{g} / {d}{extra}"


def image_section(args, config, device, lines: list[str]) -> None:
    names = tuple(f"class{k}" for k in range(args.classes))
    images, labels = synthetic_images(args.classes, args.images_per_class, 0)
    judge_payload, real_features = {}, {}
    if not args.no_eval:
        judge_cfg = dict(config["data"].get("images", {}).get("judge") or {})
        judge_payload, real_features = untrained_judge(images, labels, names, judge_cfg, device)
    data = ImageData("synthetic", images, labels, names, judge_payload, real_features)
    steps_rows, eval_rows = [], []
    for family in [f for f in args.families if f in IMAGE_FAMILIES]:
        trials = planned(config, family, "synthetic", names)
        for trial in (trials if args.all_variants else trials[:1]):
            params = params_of(trial, args.batch_size)
            label = f"{family} ({trial['variant']})" if trial["variant"] else family
            farm_runs, ref_runs = [], []
            for round_ in range(args.rounds):  # alternating which goes first: order matters
                for which in ("farm", "ref") if round_ % 2 == 0 else ("ref", "farm"):
                    print(f"... {label}: {args.steps} {which} steps (round {round_ + 1})",
                          flush=True)
                    if which == "farm":
                        farm_runs.append(farm_steps(trial, params, data, device, args.steps,
                                                    args.warmup))
                    else:
                        ref_runs.append(reference_steps(trial, params, data, device,
                                                        args.steps, args.warmup))
            _, _, pair, view, per_epoch = farm_runs[0]
            farm_ips = [images / sec for sec, images, *_ in farm_runs]
            ref_ips = [images / sec for sec, images in ref_runs]
            ratios = [f / r for f, r in zip(farm_ips, ref_ips)]
            spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
            steps_rows.append(
                f"| {label} | {trial['kind']} | {networks(trial, pair)} | {params.batch_size} | "
                f"{per_epoch} | "
                f"{np.median(farm_ips):.1f} | {np.median(ref_ips):.1f} | "
                f"{np.median(ratios):.2f}{spread} | "
                f"{1000 * np.median([r[0] for r in farm_runs]) / args.steps:.0f} | "
                f"{1000 * np.median([r[0] for r in ref_runs]) / args.steps:.0f} |")
            record("step", family=family, variant=trial["variant"], kind=trial["kind"],
                   batch=params.batch_size, steps_per_epoch=per_epoch,
                   farm_img_s=float(np.median(farm_ips)), ref_img_s=float(np.median(ref_ips)),
                   ratio=float(np.median(ratios)),
                   farm_ms_step=1000 * float(np.median([r[0] for r in farm_runs])) / args.steps,
                   ref_ms_step=1000 * float(np.median([r[0] for r in ref_runs])) / args.steps)
            if args.no_eval:
                continue
            kind = kind_of(trial["kind"])
            print(f"... {label}: evaluation", flush=True)
            vars(data).pop("_judge", None)  # a first call builds the judge, as in a trial
            first, _ = timed(lambda: kind.evaluate(pair.generator, params, view, 0), device)
            repeat = [timed(lambda: kind.evaluate(pair.generator, params, view, 0), device)[0]
                      for _ in range(args.eval_repeats)]
            scored = params.eval_images * (1 if trial["kind"] == "fruit-pairs" else len(names))
            eval_rows.append(f"| {label} | {scored} | {params.kid_subsets} | {first:.2f} | "
                             f"{np.mean(repeat):.2f} |")
            record("eval", family=family, variant=trial["variant"], classes=len(names),
                   images=scored, first_s=first, s_per_eval=float(np.mean(repeat)))
    lines += ["## Image families: one training step", "",
              f"Random uint8 {SIZE}x{SIZE} images, {args.classes} classes x "
              f"{args.images_per_class}; {args.steps} timed steps after {args.warmup} warm-up, "
              f"in {args.rounds} round(s) of farm and reference, alternating which runs first "
              "(single pairs of the conditional family gave 0.89 to 1.13 on a CPU); medians, "
              "and the range of the per-round ratio. "
              "Images/s = real images D trained on per second. **farm**: the family's "
              "build/game/real_rows and `gan_epoch` on device-resident images, with the "
              "trial's own `channels_last` and `autocast`, one call per "
              "pass over the rows as the trainable runs it (a host sync at the end of each: "
              "every `steps / epoch` steps; a fruit-pairs class of FIDS30 has 17-37 train "
              "images). **reference**: the same networks and optimizers (built by the "
              "family) and the same loss written inline (BCE for pairs, cross-entropy over "
              "classes + fake for spiked, hinge for conditional; DiffAugment where the family "
              "uses it), fed by a DataLoader over float32 host tensors, `.to(device)` per "
              "batch, fp32, `.item()` on both losses every step.", "",
              "| family | kind | G / D | batch | steps / epoch | farm img/s | reference img/s "
              "| farm / ref | farm ms/step | ref ms/step |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|", *steps_rows, ""]
    if eval_rows:
        judge_cfg = dict(config["data"].get("images", {}).get("judge") or {})
        lines += ["## Image families: one evaluation (KID + judge accuracy)", "",
                  f"The family's `evaluate` (per class: fixed-noise images from G in eval mode, "
                  f"judge features and predictions, KID to that class's real features) with an "
                  f"untrained judge of the experiment's architecture ({judge_words(judge_cfg)}) "
                  f"on {args.images_per_class} real images per class. First call includes "
                  f"building the judge from its payload; then the mean of "
                  f"{args.eval_repeats}.", "",
                  "| family | images scored | KID subsets | first s | s / evaluation |",
                  "|---|---:|---:|---:|---:|", *eval_rows, ""]


# --------------------------------------------------------------------------- modes of the step


def parse_modes(text: str) -> list[str]:
    """`fp32,bf16,bf16+compile` -> the modes to time, each a '+'-joined set of MODES."""
    modes = [mode.strip() for mode in text.split(",") if mode.strip()]
    for mode in modes:
        unknown = set(mode.split("+")) - set(MODES)
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown mode {sorted(unknown)[0]!r} in {mode!r}; "
                                             f"known: {', '.join(MODES)} (join with '+')")
    return modes


class ModeRun:
    """One image trial built as the trainable builds it, then changed in place by a mode:
    `channels-last` and `bf16` are the farm's own `channels_last` and `autocast` settings
    (farm.gan.precision, what the trainable applies), `compile` compiles G and D
    (nn.Module.compile keeps the objects the family's Game and EMA hooks hold). The warm-up
    steps are timed apart: with `compile` they hold the compilation."""

    def __init__(self, trial, params, data, device, mode: str, warmup: int):
        self.mode, self.device, self.batch = mode, device, params.batch_size
        self.parts = set(mode.split("+"))
        self.precision = StepPrecision(channels_last="channels-last" in self.parts,
                                       autocast="bf16" if "bf16" in self.parts else "")
        self.seconds: list[float] = []
        self.images, self.warmup_s, self.error = 0, 0.0, None
        try:
            _, self.pair, real, self.game, self.order = built_trial(trial, params, data, device)
            self.real = self._apply(real)
            self.epoch = 1
            self.warmup_s = self.steps(max(1, warmup))[0]
        except Exception as error:  # a mode this device or build cannot run is a row
            self.fail(error)

    def _apply(self, real):
        self.precision.lay_out(self.pair)
        if "compile" in self.parts:
            self.pair.generator.compile()
            self.pair.discriminator.compile()
        return self.precision.rows(real)

    def steps(self, count: int) -> tuple[float, int]:
        """(seconds, images) of `count` steps, epochs carried on from the last call."""
        with self.precision.steps(self.device):
            seconds, (images, epochs) = timed(
                lambda: train_steps(self.pair, self.real, self.batch, self.order, self.game,
                                    count, self.epoch), self.device)
        self.epoch += epochs
        return seconds, images

    def time(self, count: int) -> None:
        if self.error:
            return
        try:
            seconds, images = self.steps(count)
            self.seconds.append(seconds)
            self.images += images
        except Exception as error:
            self.fail(error)

    def fail(self, error: Exception) -> None:
        text = " ".join(str(error).split()) or type(error).__name__
        self.error = f"{type(error).__name__}: {text}"[:200]

    def ms_per_step(self, steps: int) -> float | None:
        return 1000 * float(np.median(self.seconds)) / steps if self.seconds else None


def mode_rows(label, family, trial, runs: list[ModeRun], steps: int) -> list[str]:
    base = next((r.ms_per_step(steps) for r in runs if r.mode == "fp32"), None)
    rows = []
    for run in runs:
        ms = run.ms_per_step(steps)
        speedup = base / ms if base and ms else None
        img_s = run.images / sum(run.seconds) if run.seconds else None
        record("mode", family=family, variant=trial["variant"], mode=run.mode, ms_step=ms,
               img_s=img_s, speedup=speedup, warmup_s=run.warmup_s, error=run.error)
        cells = ["-" if v is None else f"{v:{f}}" for v, f in
                 ((ms, ".1f"), (img_s, ".1f"), (speedup, ".2f"))]
        rows.append(f"| {label} | {run.mode} | {' | '.join(cells)} | {run.warmup_s:.1f} | "
                    f"{run.error or 'ok'} |")
    return rows


def mode_section(args, config, device, lines: list[str]) -> None:
    """The farm's step under each mode, every mode of a trial built first and then timed
    round after round in a rotating order, so no mode always runs first."""
    names = tuple(f"class{k}" for k in range(args.classes))
    images, labels = synthetic_images(args.classes, args.images_per_class, 0)
    data = ImageData("synthetic", images, labels, names, {}, {})
    rows = []
    for family in [f for f in args.families if f in IMAGE_FAMILIES]:
        trials = planned(config, family, "synthetic", names)
        for trial in (trials if args.all_variants else trials[:1]):
            params = params_of(trial, args.batch_size)
            label = f"{family} ({trial['variant']})" if trial["variant"] else family
            print(f"... {label}: building {', '.join(args.modes)}", flush=True)
            runs = [ModeRun(trial, params, data, device, mode, args.warmup) for mode in args.modes]
            for round_ in range(args.rounds):
                print(f"... {label}: {args.steps} steps per mode (round {round_ + 1})", flush=True)
                for run in runs[round_ % len(runs):] + runs[:round_ % len(runs)]:
                    run.time(args.steps)
            rows += mode_rows(label, family, trial, runs, args.steps)
            if any("compile" in mode for mode in args.modes):
                torch._dynamo.reset()  # the next family compiles afresh, with no stale guards
    lines += ["## Image families: the farm's step in bf16, channels-last and compiled", "",
              f"The farm's step (build/game/real_rows and `gan_epoch`, as above) on random "
              f"{SIZE}x{SIZE} images, {args.classes} classes x {args.images_per_class}, one "
              f"build per mode; {max(1, args.warmup)} warm-up step(s) timed apart (with "
              f"`compile`, the compilation), then {args.rounds} round(s) of {args.steps} steps, "
              "the modes in a rotating order; median ms/step. **fp32**: the farm as it runs "
              "today. **bf16**: the whole epoch under `torch.autocast(device, "
              "dtype=torch.bfloat16)` (weights and optimizer state stay fp32; no loss scaling, "
              "bf16 has fp32's range). **channels-last**: G, D and the resident images in "
              "`torch.channels_last`. **compile**: `nn.Module.compile()` on G and D in place "
              "(default mode; DiffAugment, losses and optimizers stay eager). `a+b` combines. "
              "Speed-up = fp32 ms / this mode's ms. A mode that fails shows its error.", "",
              "| family | mode | ms / step | img/s | speed-up | warm-up s | status |",
              "|---|---|---:|---:|---:|---:|---|", *rows, ""]


# --------------------------------------------------------------------------- tabular families


def tabular_section(args, config, device, lines: list[str]) -> None:
    from farm.data.prepare_tables import attach_black_box, prepare_table

    path = args.data_dir / "german_credit" / "german_credit.arff"
    if not path.is_file():
        print(f"tabular section skipped: no {path} (pass --data-dir)", flush=True)
        lines += ["## Tabular families: one epoch", "", f"Skipped: no `{path}`.", ""]
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        prepared = prepare_table("german_credit", path, None, config["data"], Path(tmp), 0)
        black_box_seconds = None
        for family in [f for f in args.families if f in TABLE_FAMILIES]:
            for trial in planned(config, family, "german_credit"):
                kind = kind_of(trial["kind"])
                if trial["kind"] == "tabular-b" and prepared.trial_data.black_box is None:
                    black_box_seconds, _ = timed(lambda: attach_black_box(prepared, 0), device)
                params = params_from(trial["kind"], trial["params"])
                data = prepared.trial_data
                label = f"{family} ({trial['variant']})"
                print(f"... {label}: {args.tabular_epochs} epochs", flush=True)
                torch.manual_seed(0)
                pair = kind.build(params, data, device)
                real = kind.real_rows(data, device)
                setup, game = timed(lambda: kind.game(params, data, pair, device), device)
                order = torch.Generator().manual_seed(0)
                for epoch in range(1, args.warmup + 1):
                    gan_epoch(pair, shuffled_batches(real, params.batch_size, order), game, epoch)
                start = args.warmup + 1

                def epochs():
                    for epoch in range(start, start + args.tabular_epochs):
                        gan_epoch(pair, shuffled_batches(real, params.batch_size, order), game,
                                  epoch)
                seconds, _ = timed(epochs, device)
                per_epoch = seconds / args.tabular_epochs
                n = (real[0] if isinstance(real, tuple) else real).shape[0]
                steps = n // params.batch_size if n > params.batch_size else 1
                record("tabular", family=family, variant=trial["variant"], rows=n,
                       batch=params.batch_size, ms_epoch=1000 * per_epoch, setup_s=setup)
                rows.append(f"| {label} | {n} | {params.batch_size} | {steps} | "
                            f"{1000 * per_epoch:.0f} | {steps * params.batch_size / per_epoch:.0f} "
                            f"| {setup:.2f} |")
    note = (f" The black box (random forest, 100 trees) took {black_box_seconds:.1f} s to fit "
            "once per dataset; every tabular-b step asks it about G's batch on the host."
            if black_box_seconds is not None else "")
    lines += ["## Tabular families: one epoch", "",
              f"German credit fit rows, `{path}`; the farm's `gan_epoch` over `shuffled_batches` "
              f"as the trainable runs it, every variant of the family's search (first search "
              f"point each). {args.tabular_epochs} timed epochs after {args.warmup} warm-up. "
              f"Setup = `game()` (tabular-b variants with a stand-in of the forest distil it "
              f"there).{note}", "",
              "| family (variant) | rows | batch | steps / epoch | ms / epoch | rows / s "
              "| setup s |",
              "|---|---:|---:|---:|---:|---:|---:|", *rows, ""]


# --------------------------------------------------------------------------- evaluator (Ray Train)


def evaluator_section(args, config, device, lines: list[str]) -> None:
    import ray

    from farm.config.classifiers import evaluator_config
    from farm.evaluation.evaluator import Task, evaluate

    use_gpu = device.type == "cuda"
    workers = args.workers or ([1, torch.cuda.device_count()] if use_gpu else [1, 2])
    workers = sorted(set(workers))
    names = tuple(f"class{k}" for k in range(args.classes))
    images, labels = synthetic_images(args.classes, args.evaluator_images // args.classes, 1)
    test_images, test_labels = synthetic_images(args.classes, 4, 2)
    base = dict(config.get("evaluator") or {})
    if args.evaluator_arch:
        base["arch"] = args.evaluator_arch
    rows = []
    ray.init(address="local", num_cpus=os.cpu_count(),
             num_gpus=torch.cuda.device_count() if use_gpu else 0,
             include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-speed-evaluator-") as tmp:
            for count in workers:
                cfg = evaluator_config({**base, "epochs": args.evaluator_epochs,
                                        "workers": count})
                print(f"... evaluator: {count} worker(s)", flush=True)
                start = time.perf_counter()
                out = evaluate("bench", [Task("real", images, labels)],
                               Task("test", test_images, test_labels), names, cfg, Path(tmp),
                               use_gpu)
                wall = time.perf_counter() - start
                result = out["results"]["real"]
                trained = cfg.epochs * len(labels)
                rows.append(f"| {out['workers']} | {out['device']} | {cfg.arch} | "
                            f"{cfg.batch_size} | {len(labels)} x {cfg.epochs} | {result['steps']} "
                            f"| {trained / max(result['seconds'], 0.05):.1f} | "
                            f"{result['seconds']:.1f} | "
                            f"{wall:.1f} |")
    finally:
        ray.shutdown()
    lines += ["## Evaluator: one classifier as a Ray Train job", "",
              f"`farm.evaluation.evaluator.evaluate` on {len(labels)} random {SIZE}x{SIZE} images of "
              f"{args.classes} classes (one task), the preset's evaluator settings but "
              f"epochs {args.evaluator_epochs}. Images/s = training images x epochs / rank 0's "
              "task seconds (model build, training and the test pass); the job's wall time "
              "adds starting the workers (and DDP's process group with several).", "",
              "| workers | device | arch | batch / worker | images x epochs | steps / worker "
              "| img/s | task s | job wall s |",
              "|---:|---|---|---:|---:|---:|---:|---:|---:|", *rows, ""]


# --------------------------------------------------------------------------- profile


def profile_trial(args, config, device, lines: list[str]) -> None:
    """torch.profiler over a few steps and one evaluation of one image trial."""
    from torch.profiler import ProfilerActivity, profile, record_function

    names = tuple(f"class{k}" for k in range(args.classes))
    images, labels = synthetic_images(args.classes, args.images_per_class, 0)
    judge_cfg = dict(config["data"].get("images", {}).get("judge") or {})
    payload, real_features = untrained_judge(images, labels, names, judge_cfg, device)
    data = ImageData("synthetic", images, labels, names, payload, real_features)
    trial = planned(config, args.profile_family, "synthetic", names)[0]
    params = params_of(trial, args.batch_size)
    kind = kind_of(trial["kind"])
    view, pair, real, game, order = built_trial(trial, params, data, device)
    _, epochs = train_steps(pair, real, params.batch_size, order, game, max(1, args.warmup), 1)
    kind.evaluate(pair.generator, params, view, 0)  # builds the judge once, as a trial does
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda"
                                           else [])
    sync(device)
    with profile(activities=activities, record_shapes=True) as prof:
        with record_function(f"bench/{args.profile_steps} training steps"):
            train_steps(pair, real, params.batch_size, order, game, args.profile_steps,
                        epochs + 1)
        with record_function("bench/one evaluation"):
            kind.evaluate(pair.generator, params, view, 0)
        sync(device)
    out = args.profile
    out.mkdir(parents=True, exist_ok=True)
    tag = device.type
    trace, table = out / f"{tag}.trace.json", out / f"{tag}.txt"
    prof.export_chrome_trace(str(trace))
    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    header = [f"Profile of one `{args.profile_family}` trial ({trial['variant']}): "
              f"{args.profile_steps} training steps (gan_epoch) and one evaluation, after warm-up.",
              f"Device: {device_words(device)}",
              f"Command: {command_line()}",
              f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; repository at "
              f"{git_commit()}; torch {torch.__version__}",
              f"Params: {trial['params']}, batch {params.batch_size}; random {SIZE}x{SIZE} images, "
              f"{args.classes} classes x {args.images_per_class}; untrained judge "
              f"({judge_words(judge_cfg)}).",
              f"Sorted by {sort}. Chrome trace: {trace.name} (chrome://tracing, "
              "ui.perfetto.dev).",
              ""]
    table.write_text("\n".join(header) + "\n"
                     + prof.key_averages().table(sort_by=sort, row_limit=args.profile_rows) + "\n")
    lines += ["## Profile", "",
              f"`{args.profile_family}` ({trial['variant']}), {args.profile_steps} steps and one "
              f"evaluation: `{table}` (key_averages by {sort}), `{trace}` (Chrome trace).", ""]


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--preset", default="full",
                        help="trials/presets/<name>.yaml over trials/*.yaml (default full: the "
                             "families' own settings; smoke: small models)")
    parser.add_argument("--families", nargs="*", default=[*IMAGE_FAMILIES, *TABLE_FAMILIES],
                        choices=[*IMAGE_FAMILIES, *TABLE_FAMILIES],
                        help="families to time (default all; none with --evaluator or --profile "
                             "alone)")
    parser.add_argument("--all-variants", action="store_true",
                        help="time every variant of the image families (default: the first)")
    parser.add_argument("--steps", type=int, default=3,
                        help="timed training steps per image family")
    parser.add_argument("--rounds", type=int, default=3,
                        help="farm and reference pairs per image family, order alternating")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed steps (epochs for tables) before timing")
    parser.add_argument("--batch-size", type=int, help="override every image family's batch size")
    parser.add_argument("--classes", type=int, default=3, help="classes of random images")
    parser.add_argument("--images-per-class", type=int, default=26,
                        help="random images per class (default 26: a FIDS30 class's train split)")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation timing")
    parser.add_argument("--eval-repeats", type=int, default=1)
    parser.add_argument("--tabular-epochs", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA,
                        help="holds german_credit/german_credit.arff (default $FARM_SHARED_DATA "
                             "or ../shared/data beside the repository)")
    parser.add_argument("--evaluator", action="store_true",
                        help="time the evaluator as a Ray Train job (starts an embedded Ray)")
    parser.add_argument("--workers", type=int, nargs="+",
                        help="evaluator worker counts (default: 1 and 2 on CPU, 1 and every GPU)")
    parser.add_argument("--evaluator-epochs", type=int, default=2)
    parser.add_argument("--evaluator-images", type=int, default=192)
    parser.add_argument("--evaluator-arch", help="override the preset's evaluator arch")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="write a torch.profiler table (<device>.txt) and Chrome trace here")
    parser.add_argument("--profile-family", default="conditional", choices=IMAGE_FAMILIES)
    parser.add_argument("--profile-steps", type=int, default=3)
    parser.add_argument("--profile-rows", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads in this process (default 1: a trial's, since Ray sets "
                             "OMP_NUM_THREADS to its resources.cpu; 0 = torch's own default)")
    parser.add_argument("--modes", type=parse_modes, default=[],
                        help="also time the image families' farm step in these modes, "
                             "comma-separated: fp32, bf16 (autocast), channels-last, compile "
                             "(torch.compile of G and D); '+' combines, e.g. bf16+compile")
    parser.add_argument("--modes-only", action="store_true",
                        help="time only the --modes table (no farm/reference rounds, "
                             "evaluations, tables)")
    parser.add_argument("--out", type=Path, help="also write the report here")
    parser.add_argument("--json", default=str(RESULTS),
                        help="every measured row as JSON (default bench/results/speed.json; "
                             "'' for none)")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.tabular_epochs < 1 or args.eval_repeats < 1:
        parser.error("--steps, --tabular-epochs and --eval-repeats must be >= 1, --warmup >= 0")
    if args.modes_only and not args.modes:
        parser.error("--modes-only needs --modes")
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    config = load_config(REPO / "trials", args.preset)
    started = time.perf_counter()
    import ray  # only for its version in the header

    lines = ["# Speed benchmark", "",
             f"- Device: {device_words(device)}",
             f"- Command: `{command_line()}`",
             f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; repository at "
             f"{git_commit()}",
             f"- Versions: python {platform.python_version()}, torch {torch.__version__}, "
             f"ray {ray.__version__}, numpy {np.__version__}",
             f"- Settings: preset `{args.preset}`, device `{device}`, fp32"
             + (f"; modes {', '.join(args.modes)}" if args.modes else ""), ""]
    body: list[str] = []
    images_wanted = any(f in IMAGE_FAMILIES for f in args.families)
    if images_wanted and not args.modes_only:
        image_section(args, config, device, body)
    if images_wanted and args.modes:
        mode_section(args, config, device, body)
    if any(f in TABLE_FAMILIES for f in args.families) and not args.modes_only:
        tabular_section(args, config, device, body)
    if args.evaluator:
        evaluator_section(args, config, device, body)
    if args.profile:
        profile_trial(args, config, device, body)
    body.append(f"Wall time of the whole benchmark: {time.perf_counter() - started:.0f} s.")
    emit(lines + body, args.out)
    if args.json:
        write_json(Path(args.json), device, args)


if __name__ == "__main__":
    main()
