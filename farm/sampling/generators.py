"""A trained generator that samples on its own: rows in the table's original schema, or images of
the classes asked for, the same output for the same seed.

A `Generator` is a spec (a JSON-able dict: the family kind and its settings, what the trial
was, and what decoding needs) plus the generator's weights, plus part B's black box for
`tabular-b`. An experiment's trial (farm.sampling.finished) and a generator file
(farm.sampling.generator_file) both go through the one constructor here, so a file samples
exactly what the experiment does.
The spec's `data` is what the kind's `build` reads from a dataset: for a table the fitted
transformer's state (columns in order, categories, ranges, integer columns, decimals) and the
target; for images the class names and image size. The kind's `build` gets a stand-in dataset
made of just that (no rows, no images).

Noise: one seeded torch stream per call (per class for images, from seed + the class's index
in the model's class list, as the farm's own export does), read in fixed blocks so that memory
stays bounded however many rows or images are asked for. For a sample no larger than one block
the rows are the farm's own export's, so `sample(n, seed=<a manifest's sample seed>)` writes a
trial's exported CSV again. Images are the export's too but for a level on the odd pixel: an
image generator runs channels-last here, which is faster on a CPU and rounds a few floats
differently from the export's layout.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from farm.config.family_params import MODALITY
from farm.infra.errors import ConfigError, FarmError, GeneratorFileError

ROW_BLOCK = 131_072    # tabular-a rows per forward pass (100,000 rows: one block)
REQUEST_BLOCK = 2_048  # tabular-b requests per pass (each drawn pick_best_of times)
IMAGE_BLOCK = 128      # images per forward pass


class Generator:
    """One trial's generator, ready to sample; see the module docstring for `spec`."""

    def __init__(self, spec: dict, weights: dict | None, forest=None):
        import torch

        from farm.config.family_params import params_from
        from farm.families.kinds import KINDS

        if spec.get("kind") not in KINDS:
            raise ConfigError(f"unknown model kind {spec.get('kind')!r}; this farm knows "
                              f"{', '.join(KINDS)}")
        self.spec = spec
        self.kind = KINDS[spec["kind"]]
        try:
            self.params = params_from(spec["kind"], spec["params"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"settings this farm cannot build: {exc}") from None
        self.data = _stand_in(spec, self.kind, forest)
        with torch.random.fork_rng(devices=[]):  # building draws initial weights: leave the
            pair = self.kind.build(self.params, self.data, torch.device("cpu"))  # caller's RNG
        self.module = pair.generator
        try:
            if weights is not None:  # None: as built (untrained, for benchmarks and tests)
                self.module.load_state_dict(weights)
        except (RuntimeError, KeyError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConfigError(f"the weights do not fit the model the spec describes ({first})") \
                from None
        self.module.eval()
        if self.modality == "image":  # 1.6x the images a second on a CPU (bench/sample_speed.py)
            self.module.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ what it is

    @property
    def modality(self) -> str:
        """"table" or "image"."""
        return MODALITY[self.spec["kind"]]

    @property
    def about(self) -> dict:
        """Which trial, epoch, checkpoint and experiment the weights come from."""
        return dict(self.spec["about"])

    @property
    def classes(self) -> tuple[str, ...]:
        """The classes it can draw (images); () for a table."""
        if self.modality != "image":
            return ()
        own = self.spec["about"].get("class")
        return (own,) if own else tuple(self.spec["data"]["classes"])

    @property
    def steered(self) -> bool:
        """True for tabular-b: rows asked for at a black-box confidence."""
        return self.data.black_box is not None if self.modality == "table" else False

    def __repr__(self) -> str:
        a = self.spec["about"]
        return (f"Generator({a.get('family')} {a.get('trial')}, epoch {a.get('epoch')}, "
                f"{a.get('dataset')})")

    # ------------------------------------------------------------------ sampling

    def sample(self, n: int, seed: int = 0, classes=None, confidence: float | None = None):
        """A table: a DataFrame of n rows in the original schema (tabular-b adds each row's
        requested and achieved confidence; `confidence` asks for all of them at one value,
        else they are spread evenly over [0, 1]). Images: (uint8 [N, H, W, 3], class names
        [N]) with n images of each class in `classes` (default: all it makes), in that order."""
        n = _positive(n, "n")
        seed = int(seed)
        if self.modality == "table":
            if classes is not None:
                raise ConfigError(f"{self._name()} makes rows of a table; classes= is for "
                                  "image generators")
            return self._rows(n, seed, self._confidence(confidence))
        if confidence is not None:
            raise ConfigError(f"{self._name()} makes images; confidence= is for tabular-b")
        return self._images(n, seed, self.check_classes(classes))

    def noise(self, n: int, seed: int = 0, classes=None) -> list[dict]:
        """Which noise `sample(n, seed, classes)` reads: per stream (one per class for images)
        its torch seed and the range of draws taken from it, for a manifest."""
        if self.modality == "table":
            per_row = self.params.pick_best_of if self.steered else 1
            return [{"stream_seed": int(seed), "draws": [0, n * per_row],
                     "draws_per_row": per_row}]
        return [{"class": name, "stream_seed": self._stream(seed, name), "draws": [0, n]}
                for name in self.check_classes(classes)]

    def check_classes(self, classes) -> list[str]:
        """The classes asked for, checked against the ones it makes (default: all of them)."""
        if classes is None:
            return list(self.classes)
        classes = [classes] if isinstance(classes, str) else list(classes)
        if not classes:
            raise ConfigError(f"{self._name()}: no classes asked for")
        for name in classes:
            if name not in self.classes:
                raise ConfigError(f"{self._name()} makes no class {name!r}; it makes "
                                  f"{', '.join(self.classes)}")
        return classes

    def _name(self) -> str:
        return f"trial {self.spec['about'].get('trial') or self.spec['kind']}"

    def _confidence(self, confidence):
        if confidence is None:
            return None
        if not self.steered:
            raise ConfigError(f"{self._name()} is {self.spec['about'].get('family')}: "
                              "confidence is asked of tabular-b only")
        value = float(confidence)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"confidence must be in [0, 1], got {confidence}")
        return value

    def _rows(self, n: int, seed: int, confidence: float | None):
        import pandas as pd
        import torch

        from farm.families import tabular_b

        rng = torch.Generator().manual_seed(seed)
        frames = []
        if self.steered:
            requested = np.linspace(0, 1, n) if confidence is None else np.full(n, confidence)
            for start in range(0, n, REQUEST_BLOCK):
                block = requested[start:start + REQUEST_BLOCK]
                frames.append(tabular_b.sample_frame(self.module, self.params, self.data,
                                                     len(block), seed, block, rng))
        else:
            for start in range(0, n, ROW_BLOCK):  # the kind's own sampler (tabular-a's,
                frames.append(self.kind.export(  # tabular-forest's)
                    self.module, self.params, self.data, min(ROW_BLOCK, n - start), seed, rng))
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    def _stream(self, seed: int, name: str) -> int:
        """A class's noise seed, as the farm's export draws it: a per-class pair's own seed,
        an all-class model's seed + the class's index."""
        if self.spec["about"].get("class"):
            return seed
        return seed + list(self.spec["data"]["classes"]).index(name)

    def _images(self, n: int, seed: int, classes: list[str]):
        import torch

        from farm.families.image_common import generate, to_uint8

        pictures, labels = [], []
        for name in classes:
            stream = self._stream(seed, name)
            label = None if self.spec["about"].get("class") else \
                list(self.spec["data"]["classes"]).index(name)
            rng = torch.Generator().manual_seed(stream)
            for start in range(0, n, IMAGE_BLOCK):
                count = min(IMAGE_BLOCK, n - start)
                pictures.append(to_uint8(generate(self.module, count, stream, label, rng)))
            labels += [name] * n
        return np.concatenate(pictures), np.array(labels)

    # ------------------------------------------------------------------ the file

    def save(self, path: str | os.PathLike) -> Path:
        """Write a generator file (farm.sampling.generator_file) that `load_generator` reads
        anywhere."""
        from farm.models.forest_arrays import ArrayForest
        from farm.sampling import generator_file

        arrays = {}
        if self.steered:
            forest = self.data.black_box.forest
            forest = forest if isinstance(forest, ArrayForest) else ArrayForest.from_sklearn(forest)
            arrays = {f"forest.{k}": v for k, v in forest.arrays().items()}
        return generator_file.write(path, self.spec, self.module.state_dict(), arrays)


def table_data(name: str, transformer, target: str, black_box=None) -> dict:
    """A spec's `data` for a table: its decoding, and tabular-b's black box's classes."""
    box = None if black_box is None else {
        "positive": black_box.positive, "negative": black_box.negative,
        "classes": [str(c) for c in black_box.forest.classes_]}
    return {"modality": "table", "name": name, "target": target,
            "transformer": transformer.state(), "black_box": box}


def image_data(name: str, classes, size: int) -> dict:
    """A spec's `data` for images: the class names (in the model's order) and image size."""
    return {"modality": "image", "name": name, "classes": list(classes), "size": int(size)}


def load_generator(path: str | os.PathLike) -> Generator:
    """A generator file as a Generator; a foreign, damaged or newer file is one line."""
    from farm.models.forest_arrays import ArrayForest
    from farm.sampling import generator_file

    spec, weights, arrays = generator_file.read(path)
    try:
        forest = None
        if arrays:
            box = spec["data"]["black_box"]
            forest = ArrayForest.from_arrays({k.partition(".")[2]: v for k, v in arrays.items()},
                                             box["classes"])
        return Generator(spec, weights, forest)
    except (KeyError, TypeError) as exc:
        raise GeneratorFileError(f"damaged generator spec (no {exc})", where=path) from None
    except FarmError as exc:
        raise GeneratorFileError(exc.problem, where=path) from None


def _positive(n, what: str) -> int:
    """A count of rows or images: a whole number of at least 1."""
    try:
        whole = not isinstance(n, bool) and float(n).is_integer() and int(n) >= 1
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise ConfigError(f"{what} must be a whole number of at least 1, got {n!r}")
    return int(n)


def _stand_in(spec: dict, kind, forest):
    """The dataset `build` and sampling read, made from the spec alone: no rows, no images."""
    data = spec["data"]
    if data["modality"] == "table":
        from farm.data.transformer import TableTransformer
        from farm.data.trial_data import TabularData

        transformer = TableTransformer.from_state(data["transformer"])
        table = TabularData(data["name"], transformer, data["target"], fit_frame=None,
                            fit_enc=np.zeros((0, transformer.width)), val_X=None, val_y=None)
        box = data.get("black_box")
        if box:
            from farm.models.blackbox import BlackBox

            if forest is None:
                raise ConfigError("tabular-b needs its black box, and none came with it")
            table.black_box = BlackBox(forest, table.features, box["positive"], box["negative"])
        return table
    from farm.data.trial_data import ImageData

    size = int(data["size"])
    images = ImageData(data["name"], np.zeros((0, size, size, 3), np.uint8),
                       np.zeros(0, np.int64), tuple(data["classes"]), judge={}, real_features={})
    return kind.view(images, {"class": spec["about"].get("class")})
