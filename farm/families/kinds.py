"""Each family kind (`kind:` in trials/*.yaml, named as the family and its module) as the
bundle of plain functions the shared trainable, the export and the generators call. The kind
names are stored in finished runs' files, which may hold a kind's former name (`ByKind` answers
to both); their settings and modality are in farm/config/family_params.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from farm.config.family_params import ByKind
from farm.families import (conditional, fruit_pairs, spiked, tabular_a, tabular_b,
                           tabular_forest)


@dataclass(frozen=True)
class FamilyKind:
    build: Callable                   # (params, data, device) -> GanPair
    real_rows: Callable               # (data, device) -> tensor of real training rows
    game: Callable                    # (params, data, pair, device) -> a gan_loop.Game
    evaluate: Callable                # (generator, params, data, seed) -> metrics (no test data)
    export: Callable                  # (generator, params, data, n, seed) -> synthetic output
    pictures: Callable = lambda *args: {}  # (generator, params, data, seed) -> {name: Figure}
    view: Callable = lambda data, spec: data  # the part of a dataset one trial trains on
    # a shared start (fruit-pairs' `shared_start`): which one a trial spec needs (None: none),
    # how the driver grows it ((params, data, seed, device, say) -> weights), and how a fresh
    # trial begins from it ((pair, view) -> None)
    start_key: Callable = lambda spec: None
    grow_start: Callable | None = None
    begin: Callable = lambda pair, view: None
    # a family grown without GAN steps (tabular-forest): (pair, game, epoch) -> the epoch's
    # stats as 0-dim tensors, instead of farm.gan.gan_loop.gan_epoch over the real rows
    epoch: Callable | None = None
    # a family whose trials of one shape can grow as one stacked model (farm.tune.gang):
    # (params, data, stacked pair, members, device) -> a farm.gan.stacked game
    gang_game: Callable | None = None


KINDS: dict[str, FamilyKind] = ByKind({
    "tabular-a": FamilyKind(tabular_a.build, tabular_a.real_rows, tabular_a.game,
                            tabular_a.evaluate, tabular_a.sample_frame,
                            gang_game=tabular_a.gang_game),
    "tabular-b": FamilyKind(tabular_b.build, tabular_b.real_rows, tabular_b.game,
                            tabular_b.evaluate, tabular_b.sample_frame, tabular_b.pictures),
    # Forest-Flow: scored and exported as tabular-a is; its epochs are boosting rounds
    "tabular-forest": FamilyKind(tabular_forest.build, tabular_forest.real_rows,
                                 tabular_forest.game, tabular_forest.evaluate,
                                 tabular_forest.sample_frame, epoch=tabular_forest.epoch),
    "fruit-pairs": FamilyKind(fruit_pairs.build, fruit_pairs.real_rows, fruit_pairs.game,
                              fruit_pairs.evaluate, fruit_pairs.export, fruit_pairs.pictures,
                              fruit_pairs.class_view, fruit_pairs.start_key,
                              fruit_pairs.grow_start, fruit_pairs.begin),
    "spiked": FamilyKind(spiked.build, spiked.real_rows, spiked.game, spiked.evaluate,
                         spiked.export, spiked.pictures),
    # Scored, exported and pictured as `spiked` is: KID and judge accuracy per class.
    "conditional": FamilyKind(conditional.build, spiked.real_rows, conditional.game,
                              spiked.evaluate, spiked.export, spiked.pictures),
})


def kind_of(name: str) -> FamilyKind:
    return KINDS[name]
