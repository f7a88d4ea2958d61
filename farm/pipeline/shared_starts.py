"""Growing the shared starts that some trials begin from, once, before any trial runs.

A family whose trials fine-tune from one model grown on the whole dataset (fruit-pairs with
`shared_start`: one pair on every class's fit images, then each class's pair from it) names a
start per trial spec (`FamilyKind.start_key`). The driver grows each distinct start once, on
its own device as it trains the judge, and keeps it in the experiment (`starts/<key>.pt`) so a
resumed run reuses it; the trials get the weights through the object store with their dataset
(`ImageData.starts`). The val slice and the test split stay out: a start sees the fit images
only, as every GAN does. What a start draws is kept beside it as a picture (`starts/<key>.png`),
which the report and TensorBoard show with the curves.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from farm.config.family_params import params_from
from farm.config.plan import trial_seed
from farm.families.kinds import kind_of
from farm.infra.atomic import replacing

FOLDER = "starts"


def start_file(experiment_dir: Path, key: str) -> Path:
    """`starts/<key>-<crc32 of key>.pt`: the key's separators and signs turned into a plain file
    name, and a checksum of the whole key, so keys that read alike (`a=b,c`, `a_b=c`, or differ
    in case on a case-blind disk) never share a file."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_")
    return experiment_dir / FOLDER / f"{readable}-{zlib.crc32(key.encode()):08x}.pt"


def picture_file(experiment_dir: Path, key: str) -> Path:
    """The start's samples as a PNG beside its weights."""
    return start_file(experiment_dir, key).with_suffix(".png")


def start_pictures(trials: list[dict], experiment_dir: Path) -> dict[str, str]:
    """{"shared start/<key>": PNG path} for every start the trials needed that has a picture."""
    return {f"shared start/{key}": str(picture_file(experiment_dir, key))
            for _, key in needed_starts(trials)
            if picture_file(experiment_dir, key).exists()}


def _write_picture(path: Path, samples: torch.Tensor) -> None:
    """A uint8 grid [3, H, W] as a PNG, written whole or not at all."""
    with replacing(path) as tmp:
        Image.fromarray(np.ascontiguousarray(samples.permute(1, 2, 0).numpy())).save(
            tmp, format="png")


def needed_starts(trials: list[dict]) -> dict[tuple[str, str], dict]:
    """{(dataset, start key): the first trial spec that needs it}, in the plan's order."""
    needed: dict[tuple[str, str], dict] = {}
    for spec in trials:
        key = kind_of(spec["kind"]).start_key(spec)
        if key is not None:
            needed.setdefault((spec["dataset"], key), spec)
    return needed


def grow_shared_starts(trials: list[dict], trial_data: dict, experiment_dir: Path,
                       seed: int) -> dict[str, dict]:
    """{dataset: {start key: weights}} for every start the trials need: read from the
    experiment where an earlier attempt kept it, grown and kept otherwise.
    A start's seed comes from what it is (family, dataset, setting and seed's repeat), as a
    trial's does. Grown on the driver's device, as the judge is (a cluster's head node may
    have no GPU)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    starts: dict[str, dict] = {}
    for (dataset, key), spec in needed_starts(trials).items():
        path = start_file(experiment_dir, key)
        if path.exists():
            print(f"Shared start {key}: reusing {path}")
            weights = torch.load(path, map_location="cpu", weights_only=True)
        else:
            kind, params = kind_of(spec["kind"]), params_from(spec["kind"], spec["params"])
            data = trial_data[dataset]
            print(f"Growing the shared start {key}: {params.shared_start} epochs on "
                  f"{len(data.labels)} fit images of {len(data.classes)} classes", flush=True)
            weights = kind.grow_start(
                params, data, trial_seed(seed, spec["family"], dataset, "shared start",
                                         spec["tag"], 0), device,
                say=lambda line: print(f"  shared start: {line}", flush=True))
            weights = {part: ({name: value.detach().cpu() for name, value in state.items()}
                              if isinstance(state, dict) else state.cpu())
                       for part, state in weights.items()}
            with replacing(path) as tmp:
                torch.save(weights, tmp)
            if device.type == "cuda":
                torch.cuda.empty_cache()  # the trials will want the memory the start held
        samples = weights.pop("samples", None)  # the picture stays here, not in every trial
        if samples is not None and not picture_file(experiment_dir, key).exists():
            _write_picture(picture_file(experiment_dir, key), samples)
        starts.setdefault(dataset, {})[key] = weights
    return starts
