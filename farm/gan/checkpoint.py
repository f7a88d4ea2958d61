"""A trial's checkpoint state (`state.pt`): everything a resumed trial needs to go on as if it
had never stopped, saved with torch.save and read back with weights_only=True (plain tensors
and numbers: loading runs no pickled code). The Tune trainable writes one at every evaluation;
the export and the generators read a kept one's generator weights.
"""

from __future__ import annotations

from pathlib import Path

import torch

STATE_FILE = "state.pt"


def save_state(directory: Path, pair, epoch: int, history=(), game=None, order=None,
               seed: int | None = None) -> None:
    """Everything a resumed trial needs to go on as if it had never stopped: `history` is the
    selection metric at each evaluation so far (a scheduler's smoothing window survives a
    restart), `game` whatever state the family's game keeps beside the pair (tabular-b's
    surrogate optimizer), and the random streams (torch's global one, the batch `order`) with
    the `seed` of the trial they belong to."""
    state = {"epoch": epoch,
             "history": [float(h) for h in history],
             "generator": pair.generator.state_dict(),
             "discriminator": pair.discriminator.state_dict(),
             # a family grown without gradients (tabular-forest) has no optimizers
             "g_opt": pair.g_opt.state_dict() if pair.g_opt is not None else {},
             "d_opt": pair.d_opt.state_dict() if pair.d_opt is not None else {},
             "game": game.state_dict() if hasattr(game, "state_dict") else {},
             "rng": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_rng"] = torch.cuda.get_rng_state()
    if order is not None:
        state["order"] = order.get_state()
    if seed is not None:
        state["seed"] = int(seed)
    torch.save(state, directory / STATE_FILE)


def restore(state: dict, pair, game) -> None:
    """A checkpoint's weights, optimizer moments and game state into a freshly built trial (the
    optimizers keep this trial's learning rates: after a PBT exploit they are the perturbed
    ones)."""
    for name in ("generator", "discriminator"):
        getattr(pair, name).load_state_dict(state[name])
    for name in ("g_opt", "d_opt"):
        if getattr(pair, name) is not None:
            load_keeping_rates(getattr(pair, name), state[name])
    if state.get("game") and hasattr(game, "load_state_dict"):
        game.load_state_dict(state["game"])


def random_streams(state: dict | None, seed: int, start: int) -> torch.Generator:
    """The batch order generator for epochs from `start` on. A trial resuming its own checkpoint
    continues the streams it saved, so its next epoch is the one it would have trained; a fresh
    trial, a checkpoint from before the streams were saved, or a PBT donor's (another seed:
    the exploiting trial keeps drawing its own noise) starts them from the seed."""
    order = torch.Generator()
    if state is not None and state.get("seed") == seed and "rng" in state:
        torch.set_rng_state(state["rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda_rng"])
        if "order" in state:
            order.set_state(state["order"])
            return order
    return order.manual_seed(seed + start)


def load_state(directory: Path, map_location="cpu") -> dict:
    return torch.load(Path(directory) / STATE_FILE, map_location=map_location, weights_only=True)


def load_keeping_rates(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """An optimizer's moments from a checkpoint, its learning rates from this trial's config:
    after a PBT exploit the checkpoint is the donor's and the rates are the perturbed ones."""
    rates = [group["lr"] for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, rate in zip(optimizer.param_groups, rates):
        group["lr"] = rate
