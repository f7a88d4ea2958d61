"""Gangs: trials of one shape grown as one stacked model in one Tune trial (`gang:` in a family).

A tabular MLP GAN's step on a CPU is mostly overhead, so M trials that differ only in their
seed and learning rates train as one stacked model (farm.models.stacked, farm.gan.stacked) for
about the price of one. Each member stays a trial of its own to the user: it is evaluated with
its family's metric on its own weights, keeps its own best epoch by its own selection rule, and
has its own folder `members/<trial name>/` inside the gang's trial folder, laid out as a trial's
(`progress.csv`, TensorBoard events, `best.json` and `checkpoint_best/state.pt`, an ordinary
checkpoint). The gang's Tune checkpoint holds everything to resume (the stacked weights and
moments, the random streams and every member's history and best), and the member folders are
written again from it at each evaluation.

`gang_up` (the driver) groups the planned trials; `train_gang` is the trainable's body.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from pathlib import Path

import torch
from ray import tune

from farm.config.family_params import params_from
from farm.families.kinds import kind_of
from farm.gan.checkpoint import STATE_FILE
from farm.gan.stacked import (member_weights, read_back_members, stack_pairs, stacked_batches,
                              stacked_epoch)
from farm.tune.schedulers import RANK, select_rank

MEMBERS_DIR = "members"
MEMBER_CHECKPOINT = "checkpoint_best"
GANG_FILE = "gang.pt"
SHARED_BY_MEMBERS = ("family", "kind", "dataset", "class", "epochs", "eval_every", "select",
                     "keep_checkpoints", "resources")


def is_gang(spec: dict) -> bool:
    """A gang's spec lists its members under `gang`; a planned trial's `gang` is its width."""
    return isinstance(spec.get("gang"), list)


def member_name(spec: dict) -> str:
    """A trial's folder name, `<family>_<dataset>[_<class>]_<index>`; a gang's `..._gang<index>`
    (its first member's index)."""
    part = f"_{spec['class']}" if spec.get("class") else ""
    gang = "gang" if is_gang(spec) else ""
    return f"{spec['family']}_{spec['dataset']}{part}_{gang}{spec['index']:03d}"


def _shape(spec: dict) -> str:
    """What members of one gang share: all but the seed, the tag and the learning rates."""
    params = {k: v for k, v in spec["params"].items() if k not in ("lr_g", "lr_d")}
    return json.dumps([{k: spec.get(k) for k in SHARED_BY_MEMBERS}, params], sort_keys=True,
                      default=str)


def gang_up(trials: list[dict]) -> list[dict]:
    """The units Tune grows: every trial alone, except that trials of a family with `gang: M`
    (M > 1) and one shape go in gangs of at most M. A trial under a scheduler (ASHA, PBT)
    grows alone: its scheduler stops or copies trials one by one. A gang's spec is its first
    member's, with the members' specs under `gang`."""
    units, open_gangs = [], {}
    for spec in trials:
        width = 1 if spec.get("scheduler") else int(spec.get("gang", 1))
        if width <= 1:
            units.append(spec)
            continue
        key = _shape(spec)
        gang = open_gangs.get(key)
        if gang is None or len(gang["gang"]) >= width:
            gang = {**spec, "gang": [], "tag": ""}
            open_gangs[key] = gang
            units.append(gang)
        gang["gang"].append(spec)
    for gang in (u for u in units if is_gang(u)):
        # the members' own settings are in their rows of the summary and report
        gang["tag"] = f"gang of {len(gang['gang'])}"
    # a gang of one is a plain trial
    return [u["gang"][0] if is_gang(u) and len(u["gang"]) == 1 else u for u in units]


class Member:
    """One member's record: its evaluations so far and its best, kept in the gang checkpoint."""

    def __init__(self, spec: dict, record: dict | None = None):
        self.spec = spec
        record = record or {}
        self.rows: list[dict] = record.get("rows", [])
        self.best: dict | None = record.get("best")  # {"epoch", "metrics", "rank"}
        self.best_state: dict | None = record.get("best_state")  # {"generator", "discriminator"}
        self.unwritten = True  # the kept checkpoint changed since the folder was written

    def record(self) -> dict:
        return {"rows": self.rows, "best": self.best, "best_state": self.best_state}

    def add(self, metrics: dict, generator: dict, discriminator: dict) -> None:
        """One evaluation (its `select/rank` added, as a trial reports it) and its weights."""
        place = metrics[RANK] = select_rank(metrics, self.spec["select"])
        self.rows.append(metrics)
        if place is not None and (self.best is None or place < self.best["rank"]):
            self.best = {"epoch": metrics["epoch"], "metrics": metrics, "rank": place}
            self.best_state = {"generator": generator, "discriminator": discriminator}
            self.unwritten = True

    def write(self, folder: Path) -> None:
        """The member's folder as a trial's: progress, best metrics, its kept checkpoint."""
        folder.mkdir(parents=True, exist_ok=True)
        keys = list(dict.fromkeys(k for row in self.rows for k in row))
        with open(folder / "progress.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)
        if self.best is None or not self.unwritten:
            return
        self.unwritten = False
        (folder / MEMBER_CHECKPOINT).mkdir(exist_ok=True)
        torch.save({"epoch": self.best["epoch"], "history": [], **self.best_state,
                    "g_opt": {}, "d_opt": {}, "game": {}, "seed": int(self.spec["seed"])},
                   folder / MEMBER_CHECKPOINT / STATE_FILE)
        (folder / "best.json").write_text(json.dumps(
            {"epoch": self.best["epoch"], "metrics": self.best["metrics"]}, indent=1))


def _log_scalars(writers: dict, folder: Path, member: Member, rows: list[dict]) -> None:
    from torch.utils.tensorboard import SummaryWriter

    name = member_name(member.spec)
    if name not in writers:  # a fresh process writes the whole history (a resumed gang too)
        writers[name] = SummaryWriter(str(folder))
        rows = member.rows
    for row in rows:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                writers[name].add_scalar(key, value, global_step=int(row["epoch"]))
    writers[name].flush()


def train_gang(config: dict, datasets: dict, device: torch.device) -> None:
    """The trainable's body for a gang spec (farm.tune.trainable.train_gan calls it)."""
    spec = config["trial"]
    specs = spec["gang"]
    kind = kind_of(spec["kind"])
    if kind.gang_game is None:
        raise ValueError(f"kind {spec['kind']!r} does not grow in gangs")
    params = [params_from(s["kind"], s["params"]) for s in specs]
    data = kind.view(datasets[spec["dataset"]], spec)
    pairs = []
    for member_spec, member_params in zip(specs, params):
        torch.manual_seed(int(member_spec["seed"]))  # each member's own initialisation
        pairs.append(kind.build(member_params, data, device))
    pair = stack_pairs(pairs, [p.lr_g for p in params], [p.lr_d for p in params],
                       (params[0].beta1, params[0].beta2))
    G, D = pair.generator, pair.discriminator
    game = kind.gang_game(params[0], data, pair, len(specs), device)
    orders = [torch.Generator().manual_seed(int(s["seed"]) + 1) for s in specs]
    members = [Member(s) for s in specs]
    start = 1
    torch.manual_seed(int(spec["seed"]))
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            state = torch.load(Path(directory) / GANG_FILE, map_location=device,
                               weights_only=True)
        G.load_state_dict(state["generator"])
        D.load_state_dict(state["discriminator"])
        pair.g_opt.load_state_dict(state["g_opt"])
        pair.d_opt.load_state_dict(state["d_opt"])
        members = [Member(s, r) for s, r in zip(specs, state["members"])]
        for order, saved in zip(orders, state["orders"]):
            order.set_state(saved)
        torch.set_rng_state(state["rng"])
        start = int(state["epoch"]) + 1

    real = kind.real_rows(data, device)
    trial_dir = Path(tune.get_context().get_trial_dir())
    writers: dict = {}
    window: list[dict] = []
    tick = time.perf_counter()
    for epoch in range(start, spec["epochs"] + 1):
        batches = stacked_batches(real, len(specs), params[0].batch_size, orders)
        window.append(stacked_epoch(pair, batches, game, epoch))
        if epoch % spec["eval_every"] and epoch != spec["epochs"]:
            continue
        seconds = (time.perf_counter() - tick) / len(window)
        stats = read_back_members(window)
        for index, (member, own, alone) in enumerate(zip(members, params, pairs)):
            weights = member_weights(pair, index)
            alone.generator.load_state_dict(weights[0])
            metrics = {**stats[index], **kind.evaluate(alone.generator, own, data,
                                                       int(member.spec["seed"]))}
            metrics.update(epoch=epoch, epoch_seconds=seconds)
            member.add(metrics, *weights)
            folder = trial_dir / MEMBERS_DIR / member_name(member.spec)
            member.write(folder)
            _log_scalars(writers, folder, member, [metrics])
        metric = spec["select"]["metric"]
        # the progress table's line for the gang: its best member so far
        values = [m.best["metrics"][metric] for m in members if m.best is not None]
        report = {"epoch": epoch, "epoch_seconds": seconds, "members": len(members),
                  RANK: -float(epoch)}  # Tune keeps the newest gang checkpoints
        if values:
            report[metric] = max(values) if spec["select"]["mode"] == "max" else min(values)
        with tempfile.TemporaryDirectory() as directory:
            torch.save({"epoch": epoch, "generator": G.state_dict(),
                        "discriminator": D.state_dict(), "g_opt": pair.g_opt.state_dict(),
                        "d_opt": pair.d_opt.state_dict(),
                        "members": [m.record() for m in members],
                        "orders": [o.get_state() for o in orders],
                        "rng": torch.get_rng_state()}, Path(directory) / GANG_FILE)
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(directory))
        window = []
        tick = time.perf_counter()


def member_outcomes(spec: dict, trial_path: str) -> list[dict]:
    """What each member of a finished gang left in its folder: its spec, folder, best epoch,
    best metrics and kept checkpoint, for the driver (farm.tune.runner)."""
    out = []
    for member_spec in spec["gang"]:
        folder = Path(trial_path) / MEMBERS_DIR / member_name(member_spec)
        best_file = folder / "best.json"
        best = json.loads(best_file.read_text()) if best_file.is_file() else None
        out.append({"spec": member_spec, "path": str(folder),
                    "best_epoch": int(best["epoch"]) if best else None,
                    "best_metrics": best["metrics"] if best else {},
                    "checkpoint": str(folder / MEMBER_CHECKPOINT) if best else None})
    return out
