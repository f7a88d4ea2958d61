"""Which Ray a run uses, and the line that says so: `--local`, `--address` / RAY_ADDRESS, a
cluster `ray start` runs on this machine (the head of `ray up`), else an embedded Ray."""

from __future__ import annotations

import socket

import pytest

from farm.infra.errors import ConfigError
from farm.pipeline import cluster


@pytest.fixture
def listening():
    """A TCP port that answers, as a live Ray head's would."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()


def _dead_address() -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    return f"127.0.0.1:{port}"


def test_without_anything_running_an_embedded_ray_starts(monkeypatch):
    monkeypatch.setattr(cluster, "started_cluster_address", lambda: None)
    choice = cluster.choose_ray(None)
    assert choice.address is None and choice.line.startswith("Ray: an embedded Ray")


def test_a_cluster_ray_start_runs_here_is_joined_and_local_overrides_it(monkeypatch, listening):
    monkeypatch.setattr(cluster, "started_cluster_address", lambda: listening)
    choice = cluster.choose_ray(None)
    assert choice.address == listening
    assert f"joining the cluster `ray start` runs on this machine, at {listening}" in choice.line
    forced = cluster.choose_ray(None, local=True)
    assert forced.address is None and forced.line == "Ray: an embedded Ray on this machine " \
                                                      "(--local)"
    assert cluster.choose_ray(listening, local=True).address is None


def test_a_stale_record_of_a_dead_cluster_falls_back_to_an_embedded_ray(monkeypatch):
    dead = _dead_address()
    monkeypatch.setattr(cluster, "started_cluster_address", lambda: dead)
    choice = cluster.choose_ray(None)
    assert choice.address is None and f"recorded {dead}, which does not answer" in choice.line


def test_an_address_given_is_joined_or_refused_in_seconds(monkeypatch, listening):
    monkeypatch.setattr(cluster, "started_cluster_address", lambda: None)
    assert cluster.choose_ray(listening).address == listening
    dead = _dead_address()
    with pytest.raises(ConfigError, match=f"--address {dead}: no Ray head answers there"):
        cluster.choose_ray(dead)


def test_the_command_line_reaches_the_choice():
    from farm.pipeline.cli import parser

    assert parser().parse_args(["--local"]).local is True
    assert parser().parse_args([]).local is False
