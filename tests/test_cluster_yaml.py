"""cluster.yaml (AWS) and cluster-onprem.yaml are valid Ray cluster configs by Ray's own schema,
open no ports, use one auth mode everywhere, and give the autoscaler what it needs to scale GPU
workers from zero."""

import re
from pathlib import Path

import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster.yaml"
ONPREM = REPO / "cluster-onprem.yaml"
CONFIGS = [CLUSTER, ONPREM]
IDS = [p.name for p in CONFIGS]

AUTH_MODE = re.compile(r"\bRAY_AUTH_MODE=(\w+)")
RAY_PIN = re.compile(r"\bray(?:\[[^\]]*\])?==([\w.]+)")
RAY_PORTS = (6379, 8265, 10001)
# (CPUs, GPUs) of the instance types the file uses: a new instance type needs its row here, so
# that the declared resources are checked against the machine, not against themselves.
INSTANCE_SHAPES = {"m5.xlarge": (4, 0), "g5.xlarge": (4, 1)}


def _load(path: Path = CLUSTER) -> dict:
    return yaml.safe_load(path.read_text())


def _check(config: dict) -> dict:
    """Ray's own check, as `ray up` does it: fill in the provider's defaults, then the schema."""
    prepared = prepare_config(config)
    validate_config(prepared)
    return prepared


def _start_commands(config: dict) -> list[str]:
    return [c for key in ("head_start_ray_commands", "worker_start_ray_commands")
            for c in config[key] if "ray start" in c]


def _gpu_types(config: dict) -> dict:
    return {name: t for name, t in config["available_node_types"].items()
            if t["resources"].get("GPU", 0) > 0}


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_cluster_yaml_passes_rays_schema(path):
    _check(_load(path))


@pytest.mark.parametrize("path, key", [(CLUSTER, "max_workers"), (ONPREM, "setup_commands")],
                         ids=IDS)
def test_misspelt_key_is_rejected_by_the_same_check(path, key):
    config = _load(path)
    config[key[:-1] + "z"] = config.pop(key)
    with pytest.raises(Exception, match=key[:-1] + "z"):
        _check(config)


def test_misspelt_key_inside_a_node_type_is_rejected_by_the_same_check():
    config = _load()
    for node_type in _gpu_types(config).values():
        node_type["min_workerz"] = node_type.pop("min_workers")
    with pytest.raises(Exception, match="min_workerz"):
        _check(config)


def test_fractional_gpu_count_in_a_node_type_is_rejected_by_the_same_check():
    # Ray's schema types every node type's resources as integers, so no project check is needed:
    # a node declares whole GPUs; fractional shares are what trials request.
    for name in _gpu_types(_load()):
        config = _load()
        config["available_node_types"][name]["resources"]["GPU"] = 0.5
        with pytest.raises(Exception, match="0.5 is not of type 'integer'"):
            _check(config)


def test_onprem_placeholders_pass_but_a_missing_head_ip_is_refused():
    config = _load(ONPREM)
    assert config["provider"]["type"] == "local"
    assert config["provider"]["head_ip"] and config["provider"]["worker_ips"]
    assert config["auth"]["ssh_private_key"] == "~/.ssh/id_rsa"
    del config["provider"]["head_ip"]
    with pytest.raises(Exception, match="head_ip"):
        _check(config)


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_nothing_binds_all_interfaces_or_opens_the_client_port(path):
    text = path.read_text()
    assert "0.0.0.0" not in text
    assert "ray-client-server-port" not in text
    # Also after Ray's defaults are merged in (AWS's default head command has 0.0.0.0).
    prepared = _check(_load(path))
    assert not [c for c in prepared["head_start_ray_commands"] if "0.0.0.0" in c]


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_dashboard_is_bound_to_localhost_on_every_head_start(path):
    heads = [c for c in _check(_load(path))["head_start_ray_commands"]
             if re.search(r"ray start\b.*--head\b", c)]
    assert heads
    for command in heads:
        assert "--dashboard-host=127.0.0.1" in command, command


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_no_security_group_rule_opens_ray_ports_to_the_internet(path):
    rules = _load(path)["provider"].get("security_group", {}).get("IpPermissions", [])
    for rule in rules:
        open_to_all = any(r.get("CidrIp") == "0.0.0.0/0" for r in rule.get("IpRanges", [])) or \
            any(r.get("CidrIpv6") == "::/0" for r in rule.get("Ipv6Ranges", []))
        low, high = rule.get("FromPort", -1), rule.get("ToPort", -1)
        covers = [p for p in RAY_PORTS if low == -1 or low <= p <= high]
        assert not (open_to_all and covers), rule


def test_every_ray_start_in_both_files_sets_the_same_auth_mode():
    modes = set()
    for path in CONFIGS:
        config = _load(path)
        starts = _start_commands(config)
        assert len(starts) == 2, starts  # one head, one worker
        for command in starts:
            found = AUTH_MODE.findall(command)
            assert len(found) == 1, command
            assert command.index("RAY_AUTH_MODE") < command.index("ray start"), command
            modes.add(found[0])
        # Drivers started over SSH on the nodes get the same mode.
        driver_modes = {m for c in config["setup_commands"] for m in AUTH_MODE.findall(c)}
        modes |= driver_modes
        assert driver_modes, f"{path.name}: setup_commands set no RAY_AUTH_MODE for drivers"
    assert modes == {"token"}, modes


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_the_token_is_a_mounted_file_never_a_value(path):
    text = path.read_text()
    assert "RAY_AUTH_TOKEN" not in text
    assert _load(path)["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


def test_every_node_type_declares_the_resources_of_its_instance():
    config = _load()
    for name, node_type in config["available_node_types"].items():
        instance = node_type["node_config"]["InstanceType"]
        assert instance in INSTANCE_SHAPES, f"{name}: add {instance} to INSTANCE_SHAPES"
        cpus, gpus = INSTANCE_SHAPES[instance]
        resources = node_type["resources"]
        assert resources.get("GPU", 0) == gpus and type(resources.get("GPU", 0)) is int, name
        if name != config["head_node_type"]:  # the head may declare CPU: 0
            assert resources.get("CPU") == cpus, name


def test_a_spot_and_an_on_demand_gpu_type_scale_from_zero_with_the_same_gpus():
    config = _load()
    gpu = _gpu_types(config)
    spot = {n: t for n, t in gpu.items()
            if t["node_config"].get("InstanceMarketOptions", {}).get("MarketType") == "spot"}
    on_demand = {n: t for n, t in gpu.items() if "InstanceMarketOptions" not in t["node_config"]}
    assert spot and on_demand
    assert len({t["resources"]["GPU"] for t in gpu.values()}) == 1
    assert len({t["node_config"]["InstanceType"].split(".")[0] for t in gpu.values()}) == 1
    for node_type in gpu.values():
        assert node_type["min_workers"] == 0
    # Spot first when both fit (autoscaler v2 breaks the tie by priority).
    assert min(t.get("priority", 0) for t in spot.values()) > \
        max(t.get("priority", 0) for t in on_demand.values())
    assert config["max_workers"] >= sum(t["max_workers"] for t in gpu.values())


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_setup_installs_the_projects_requirements(path):
    config = _load(path)
    assert config["file_mounts"]["~/gan-farm"] == "."
    assert any(re.search(r"pip install .*-r ~/gan-farm/requirements\.txt", c)
               for c in config["setup_commands"])


def test_ray_version_is_the_same_everywhere():
    pins = RAY_PIN.findall((REPO / "requirements.txt").read_text())
    assert len(pins) == 1, pins
    for path in CONFIGS:
        for found in RAY_PIN.findall(path.read_text()):
            assert found == pins[0], f"{path.name} installs ray=={found}, requirements {pins[0]}"
    # The schema checked above is the pinned Ray's.
    assert ray.__version__ == pins[0]


def test_onprem_runs_the_same_setup_and_start_commands():
    aws, onprem = _load(CLUSTER), _load(ONPREM)
    for key in ("setup_commands", "head_start_ray_commands", "worker_start_ray_commands",
                "file_mounts", "rsync_filter", "rsync_exclude"):
        assert aws[key] == onprem[key], key
