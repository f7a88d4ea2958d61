"""--gpus-per-trial: every GPU family takes the share; a CPU-only kind takes none."""

import pytest

from farm.infra.errors import ConfigError
from farm.pipeline.experiment import _gpu_shares


def _trials():
    return [{"kind": kind, "resources": {"cpu": 1, "gpu": gpu}}
            for kind, gpu in (("tabular-a", 0.1), ("tabular-forest", 0.0), ("conditional", 0.5))]


def test_a_gpu_share_goes_to_gpu_families_only():
    trials = _trials()
    _gpu_shares(trials, 0.25)
    assert [t["resources"]["gpu"] for t in trials] == [0.25, 0.0, 0.25]
    untouched = _trials()
    _gpu_shares(untouched, None)
    assert untouched == _trials()
    with pytest.raises(ConfigError, match="--gpus-per-trial 1.5"):
        _gpu_shares(_trials(), 1.5)
