"""Trial families: each says in a few lines what data, models and metric it uses.

A family kind is a bundle of plain functions the shared trainable calls; `trials/*.yaml` names
the kind of each family it defines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from farm.families import tabular


@dataclass(frozen=True)
class FamilyKind:
    params: type                      # dataclass of every setting, filled from YAML
    build: Callable                   # (params, data, device) -> GanPair
    real_rows: Callable               # (data, device) -> tensor of real training rows
    sample_inputs: Callable           # (params, n, device) -> generator inputs
    evaluate: Callable                # (generator, params, data, seed) -> metrics (no test data)
    export: Callable                  # (generator, params, data, n, seed) -> synthetic output


KINDS: dict[str, FamilyKind] = {
    "tabular": FamilyKind(tabular.TabularParams, tabular.build,
                          tabular.real_rows, tabular.sample_inputs, tabular.evaluate,
                          tabular.sample_frame),
}


def kind_of(name: str) -> FamilyKind:
    return KINDS[name]


def params_from(kind: str, values: dict[str, Any]):
    """Build a kind's params dataclass, turning YAML lists into tuples."""
    return KINDS[kind].params(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in values.items()})
