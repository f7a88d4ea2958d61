"""bench/gpu_check.py, the check a GPU lease runs: its `--cpu` mode end to end (every step at
tiny size, the report and its JSON), and the parts that need no run, so that the script
cannot rot between leases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from extrapolate import estimate, wall_seconds  # noqa: E402
from gpu_check import CPU, gpu_tests, periodic_status_lines  # noqa: E402

STEPS = ["gpu-tests", "smoke-farm", "speed", "modes", "compile", "packing"]
SECTIONS = ["## Steps", "## 1. GPU tests", "## 2. Smoke farm", "## 3. Speed",
            "## 3b. bf16, channels-last and torch.compile", "## 4. Packing",
            "## 5. Utilisation and memory", "## Extrapolation: the full preset"]


def test_the_gpu_tests_are_found_by_their_cuda_skip():
    found = gpu_tests()
    assert "tests/gan/test_diffaugment.py::test_on_a_gpu_it_stays_there_without_a_host_sync" \
        in found
    assert "tests/metrics/test_image_metrics.py::test_cuda_matches_cpu" in found


def test_the_periodic_status_is_counted_apart_and_the_final_report_is_not():
    lines = ["Growing 3 trials", "[0:00] trials: 0 of 3 done, 0 running, 3 waiting",
             "[0:30] trials: 1 of 3 done, 2 running, 0 waiting", "  trial  setting", "  a  x",
             "  b  y", "Exporting", "[1:02] trials: 3 of 3 done, 0 running, 0 waiting",
             "  trial  setting", "  a  x", "  b  y", "  c  z", "Evaluator for fids30"]
    assert periodic_status_lines(lines) == (2, 5)
    assert periodic_status_lines(["no status here"]) == (0, 0)


def test_the_extrapolation_reproduces_packings_own_trials_and_spreads_the_rest():
    assert wall_seconds([10.0, 10.0, 10.0, 10.0], 2) == 20.0
    assert wall_seconds([100.0, 1.0, 1.0], 8) == 100.0  # never under the longest trial
    records = [
        {"section": "step", "family": "fruit-pairs", "variant": "report", "batch": 16,
         "farm_ms_step": 20.0},
        {"section": "eval", "family": "fruit-pairs", "variant": "report", "classes": 3,
         "s_per_eval": 0.5}]
    row = {"share": 0.5, "trials at once": 2, "trial phase s": 4.0, "classes": 2,
           "trial-epochs": 20}
    result = estimate(records, [row], None, packing_epochs=10, packing_eval_every=5)
    (packing,) = result["packing"]
    # no data folder: FIDS30's median class (21 fit images, one step of 16) -> T = 10 x 0.12
    assert packing["alone s"] == pytest.approx(2 * 10 * (0.02 + 0.5 / 5))
    assert result["sigma"] == pytest.approx(8.0 / 2.4)
    assert result["overhead s / epoch"] == pytest.approx((8.0 - 2.4) / 20)
    assert result["untimed trials"] > 0  # spiked, conditional and the tables: not timed
    assert [w["gpus"] for w in result["wall"]] == [1, 4, 16]
    assert all(w["hours, sigma x T"] > 0 for w in result["wall"])


@pytest.mark.timeout(sum(CPU.limits.values()) + 120)  # two tiny farms, on 2 busy cores
def test_cpu_check_runs_every_step_and_reports_each(shared_data, tmp_path):
    out, figures_path = tmp_path / "check.md", tmp_path / "check.json"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--cpu",
                           "--data-dir", str(shared_data), "--out", str(out),
                           "--json", str(figures_path)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report, figures = out.read_text(), json.loads(figures_path.read_text())
    assert all(section in report for section in SECTIONS)
    assert figures["status"] == {step: "ok" for step in STEPS}
    for index, step in enumerate(STEPS, 1):
        assert f"| {index} | {step} | ok |" in report
    assert report.count("Status: **ok**") == len(STEPS)
    steps = {s["name"]: s["figures"] for s in figures["steps"]}
    assert steps["gpu-tests"]["skipped"] == len(gpu_tests()) == 3  # no GPU here: all skip
    assert steps["smoke-farm"]["trials ok"] == steps["smoke-farm"]["trials"] > 0
    # the farm's terminal, evaluator included, shows progress and none of the known noise;
    # the trial status every 30 s is counted apart, since a busy machine repeats it more often
    farm = steps["smoke-farm"]
    assert farm["terminal noise"] == []
    assert farm["terminal lines"] - farm["periodic status lines"] <= 70
    assert 0 < farm["periodic status reports"] <= farm["phases"]["trials"] / 30 + 2
    modes = {r["mode"] for name in ("modes", "compile") for r in steps[name]["records"]}
    assert modes == {"fp32", "bf16", "channels-last", "bf16+channels-last", "compile"}
    assert len(steps["packing"]["rows"]) == 1
    for line in ("- One trial alone: `T = epochs x", "`sigma = P x K / sum T`",
                 "- `wall(N) = max(", "- Not counted:"):
        assert line in report
    hours = figures["full preset hours"]
    assert list(hours) == ["1", "4", "16"] and all(low > 0 for low, _ in hours.values())
