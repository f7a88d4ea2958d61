"""The generator file: one trained generator that samples anywhere, with no data, no experiment
and no Ray.

It is a `torch.save` archive of plain types that `torch.load(..., weights_only=True)` reads, so
loading never runs a pickle's code:

    format   "gan-farm generator"          what the file is (anything else is refused)
    version  1                             the layout below (a newer one is refused by name)
    spec     a JSON text: what the model is and what it decodes to (farm.sampling.generators)
    weights  the generator's state_dict
    arrays   {name: tensor}: part B's black box as arrays (farm.models.forest_arrays), else empty

A file that is not one of these, or is from another version, is one line naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from farm.infra.atomic import replacing
from farm.infra.errors import GeneratorFileError

FORMAT = "gan-farm generator"
VERSION = 1


def write(path: str | os.PathLike, spec: dict, weights: dict, arrays: dict) -> Path:
    """Write the file whole or not at all; returns its path."""
    import torch

    payload = {"format": FORMAT, "version": VERSION, "spec": json.dumps(spec, sort_keys=True),
               "weights": weights,
               "arrays": {name: torch.as_tensor(value) for name, value in arrays.items()}}
    path = Path(path)
    with replacing(path) as tmp:
        torch.save(payload, tmp)
    return path


def read(path: str | os.PathLike) -> tuple[dict, dict, dict]:
    """(spec, weights, arrays as numpy) of a generator file, or one line saying why not."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise GeneratorFileError("no such file" if not path.exists() else "not a file",
                                 where=path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # text, another archive, pickled code: refused, never run
        raise GeneratorFileError("not a GAN Farm generator file (not a weights-only torch "
                                 "archive)", where=path) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise GeneratorFileError("not a GAN Farm generator file (no "
                                 f"'format: {FORMAT}' in it)", where=path)
    version = payload.get("version")
    if version != VERSION:
        if isinstance(version, int) and version > VERSION:
            problem = f"is newer than this farm reads ({VERSION}); update the farm"
        else:
            problem = f"is not one this farm reads (it reads version {VERSION})"
        raise GeneratorFileError(f"generator file format version {version!r} {problem}",
                                 where=path)
    try:
        spec = json.loads(payload["spec"])
        weights, arrays = payload["weights"], payload["arrays"]
    except (KeyError, TypeError, ValueError) as exc:
        raise GeneratorFileError(f"damaged generator file ({type(exc).__name__}: {exc})",
                                 where=path) from None
    return spec, weights, {name: tensor.numpy() for name, tensor in arrays.items()}
