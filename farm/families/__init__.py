"""Trial families: each says in a few lines what data, models and metric it uses.

A family kind is a bundle of plain functions the shared trainable calls; `trials/*.yaml` names
the kind of each family it defines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from farm.families import conditional, tabular_b
from farm.families import image_common as images
from farm.families import tabular_a


@dataclass(frozen=True)
class FamilyKind:
    params: type                      # dataclass of every setting, filled from YAML
    build: Callable                   # (params, data, device) -> GanPair
    real_rows: Callable               # (data, device) -> tensor of real training rows
    game: Callable                    # (params, data, pair, device) -> a gan_loop.Game
    evaluate: Callable                # (generator, params, data, seed) -> metrics (no test data)
    export: Callable                  # (generator, params, data, n, seed) -> synthetic output
    pictures: Callable = lambda *args: {}  # (generator, params, data, seed) -> {name: Figure}
    view: Callable = lambda data, spec: data  # the part of a dataset one trial trains on
    modality: str = "table"                  # "table" or "image": how the driver exports


KINDS: dict[str, FamilyKind] = {
    "tabular": FamilyKind(tabular_a.TabularParams, tabular_a.build,
                          tabular_a.real_rows, tabular_a.game, tabular_a.evaluate,
                          tabular_a.sample_frame),
    "tabular-b": FamilyKind(tabular_b.ConfidenceParams, tabular_b.build, tabular_b.real_rows,
                            tabular_b.game, tabular_b.evaluate, tabular_b.sample_frame,
                            tabular_b.pictures),
    "image-pair": FamilyKind(images.ImageParams, images.build_pair, images.class_rows,
                             images.pair_game, images.evaluate_pair, images.export_pair,
                             images.pictures_pair, images.class_view, "image"),
    "image-spiked": FamilyKind(images.ImageParams, images.build_spiked, images.all_rows,
                               images.spiked_game, images.evaluate_spiked, images.export_spiked,
                               images.pictures_spiked, modality="image"),
    # Scored, exported and pictured as `spiked` is: KID and judge accuracy per class.
    "image-conditional": FamilyKind(conditional.ConditionalParams, conditional.build,
                                    images.all_rows, conditional.game, images.evaluate_spiked,
                                    images.export_spiked, images.pictures_spiked,
                                    modality="image"),
}


def kind_of(name: str) -> FamilyKind:
    return KINDS[name]


def params_from(kind: str, values: dict[str, Any]):
    """Build a kind's params dataclass, turning YAML lists into tuples."""
    return KINDS[kind].params(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in values.items()})
