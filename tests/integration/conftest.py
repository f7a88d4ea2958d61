"""A copy of the farm's trials/ with a `slow` preset: two short tabular families on one dataset,
part B long enough (90 epochs) that a driver or a node can be lost while it runs."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SLOW_PRESET = """
description: tiny, but tabular-b runs long enough to be interrupted mid-way
families:
  tabular-a:
    epochs: 4
    eval_every: 2
    search: {variant: [stable]}
    params: {metric_trees: 10}
  tabular-b:
    epochs: 90
    eval_every: 10
    search: {variant: [anchored]}
    params: {metric_trees: 10, eval_requests: 6, surrogate_warmup: 20}
"""


def pbt_preset(epochs: int, interval: int) -> str:
    """A population of four G rates for tabular-a, trained with PBT every `interval` epochs."""
    return f"""
description: a population of four G rates, trained with PBT
families:
  tabular-a:
    epochs: {epochs}
    eval_every: 2
    samples: 4
    search:
      variant: [stable]
      lr_g: {{loguniform: [1.0e-6, 1.0e-2]}}
    scheduler:
      kind: pbt
      grace_period: 2
      perturbation_interval: {interval}
      quantile_fraction: 0.5
      mutations: {{lr_g: {{loguniform: [1.0e-6, 1.0e-2]}}}}
    params: {{metric_trees: 10}}
"""


# long enough to lose the driver while exploits happen
SLOW_PBT_PRESET = pbt_preset(epochs=40, interval=4)


@pytest.fixture(scope="module")
def ray_local():
    """An embedded two-CPU Ray for a module's farm runs."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def slow_trials(tmp_path) -> Path:
    trials = Path(shutil.copytree(REPO / "trials", tmp_path / "trials"))
    (trials / "presets" / "slow.yaml").write_text(SLOW_PRESET)
    (trials / "presets" / "slow-pbt.yaml").write_text(SLOW_PBT_PRESET)
    return trials


BUCKET = "farm-bucket"


@pytest.fixture(scope="session")
def s3():
    """A local S3 endpoint with one bucket; (URI of a prefix in it, environment for the farm)."""
    import boto3
    from moto.server import ThreadedMotoServer

    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"{host}:{port}"
    boto3.client("s3", endpoint_url=f"http://{endpoint}", aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1"
                 ).create_bucket(Bucket=BUCKET)
    yield f"s3://{BUCKET}/exps?scheme=http&endpoint_override={endpoint}&region=us-east-1", env
    server.stop()


def kill_when(command: list[str], log: Path, ready, env: dict | None = None,
              wait_s: float = 240) -> None:
    """Run the farm, and SIGKILL the driver and everything it started once `ready()` holds."""
    with log.open("w") as out:
        driver = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True,
                                  stdout=out, stderr=subprocess.STDOUT)
        deadline = time.time() + wait_s
        while time.time() < deadline and not ready():
            assert driver.poll() is None, log.read_text()[-2000:]
            time.sleep(0.2)
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
