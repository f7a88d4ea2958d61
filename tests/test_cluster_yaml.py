"""cluster.yaml is a valid Ray cluster config by Ray's own schema, and exposes no ports."""

from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER = Path(__file__).resolve().parents[1] / "cluster.yaml"


def _load():
    return yaml.safe_load(CLUSTER.read_text())


def test_cluster_yaml_passes_rays_schema():
    validate_config(prepare_config(_load()))


def test_misspelt_key_is_rejected_by_the_same_check():
    config = _load()
    config["max_workerz"] = config.pop("max_workers")
    with pytest.raises(Exception, match="max_workerz"):
        validate_config(prepare_config(config))


def test_dashboard_is_bound_to_localhost_only():
    text = CLUSTER.read_text()
    assert "--dashboard-host=127.0.0.1" in text
    assert "0.0.0.0" not in text
    assert "ray-client-server-port" not in text
