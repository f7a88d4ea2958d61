"""Which Ray a run uses, and the line that says so: `--local`, `--address` / RAY_ADDRESS, a
cluster `ray start` runs on this machine (the head of `ray up`), else an embedded Ray."""

from __future__ import annotations

import socket

import pytest

from farm.infra.errors import ConfigError
from farm.tune import runner


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
    monkeypatch.setattr(runner, "started_cluster_address", lambda: None)
    choice = runner.choose_ray(None)
    assert choice.address is None and choice.line.startswith("Ray: an embedded Ray")


def test_a_cluster_ray_start_runs_here_is_joined_and_local_overrides_it(monkeypatch, listening):
    monkeypatch.setattr(runner, "started_cluster_address", lambda: listening)
    choice = runner.choose_ray(None)
    assert choice.address == listening
    assert f"joining the cluster `ray start` runs on this machine, at {listening}" in choice.line
    forced = runner.choose_ray(None, local=True)
    assert forced.address is None and forced.line == "Ray: an embedded Ray on this machine " \
                                                      "(--local)"
    assert runner.choose_ray(listening, local=True).address is None


def test_a_stale_record_of_a_dead_cluster_falls_back_to_an_embedded_ray(monkeypatch):
    dead = _dead_address()
    monkeypatch.setattr(runner, "started_cluster_address", lambda: dead)
    choice = runner.choose_ray(None)
    assert choice.address is None and f"recorded {dead}, which does not answer" in choice.line


def test_an_address_given_is_joined_or_refused_in_seconds(monkeypatch, listening):
    monkeypatch.setattr(runner, "started_cluster_address", lambda: None)
    assert runner.choose_ray(listening).address == listening
    dead = _dead_address()
    with pytest.raises(ConfigError, match=f"--address {dead}: no Ray head answers there"):
        runner.choose_ray(dead)


def test_the_command_line_reaches_the_choice():
    from farm.pipeline.cli import parser

    assert parser().parse_args(["--local"]).local is True
    assert parser().parse_args([]).local is False


class _Grid(list):
    def __init__(self, size, terminated, errors):
        super().__init__(range(size))
        self.num_terminated, self.num_errors = terminated, errors


def test_an_interrupted_run_stops_instead_of_exporting_half_grown_trials():
    from farm.infra.errors import FarmError

    done = _Grid(5, 4, 1)
    assert runner.finished(done) is done
    with pytest.raises(FarmError, match="interrupted with 2 of 5 trials unfinished.*--resume"):
        runner.finished(_Grid(5, 3, 0))
