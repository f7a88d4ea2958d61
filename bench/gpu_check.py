"""GPU check: the farm's GPU questions answered inside one 15-minute GPU lease.

One command runs these steps in order, each as a subprocess under its own time limit. A step
that fails or runs out of time is reported with its log's tail, its processes (Ray's too) are
killed, and the next step starts. A step may also use what the steps before it left unused
of their limits, never the time reserved for the steps after it, and all of them fit inside
`--budget` seconds (default: the sum of the limits, 465 s on a GPU; with the report, under 8
minutes):

1. `gpu-tests`: pytest on the tests that skip without CUDA (a `skipif` on
   `torch.cuda.is_available()`, found by reading tests/);
2. `smoke-farm`: `run_farm.py --preset smoke --gpus-per-trial 0.25 --local`, every family;
3. `speed`: bench/speed.py, the farm's step of every image family and trial variant against
   the plain reference loop, one evaluation each, and the tabular epochs. `modes` times the
   same step in fp32, bf16 autocast and channels-last. `compile` times it with torch.compile;
   compiling is slow, so it runs as its own step with its own limit;
4. `packing`: bench/packing.py at shares 0.5 and 0.25 (4 fruit-pairs trials, the full
   preset's models);
5. throughout: the GPU's utilisation and memory every 0.5 s (nvidia-smi). Without a GPU it
   samples the machine's CPU use and this process tree's summed RSS (psutil).

From those figures it extrapolates the `full` preset's wall time on 1, 4 and 16 GPUs
(bench/extrapolate.py; the report gives the formula and what it leaves out). It writes one
markdown report (`--out`) and its headline figures as JSON (`--json`). The exit code is 1 when
a step failed or ran out of time.

    .venv/bin/python bench/gpu_check.py --data-dir ../shared/data          # GPU: under 8 min
    .venv/bin/python bench/gpu_check.py --cpu --data-dir ../shared/data \\
        --out /tmp/gpu-check-cpu.md --json /tmp/gpu-check-cpu.json          # CPU: ~3-4 min

`--cpu` runs the same steps at tiny sizes on the CPU: the `tiny` preset's fruit-pairs farm,
1-step timings, compile on one family, one packing row, and the GPU tests collected (they
skip). It checks the script and answers no GPU question. `--only speed,packing` reruns some
steps, and `--limit smoke-farm=200` changes one step's limit.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent

from common import SPEED_RECORD, command_line, emit, git_commit, host_cpu  # noqa: E402
from extrapolate import estimate, formula_lines  # noqa: E402
from packing import Sampler, has_gpu  # noqa: E402

NAME = "gpu-check"
SHARED_DATA = Path(os.environ.get("FARM_SHARED_DATA", REPO.parent / "shared" / "data"))
IMAGE_FAMILIES = ("fruit-pairs", "spiked", "conditional")
MIN_STEP_S = 10  # a step offered less than this of the budget is skipped, not started
TAIL_LINES = 20
# What a farm's terminal must not show (issue 19): Ray's checkpoint lines, Tune's Ray-temp
# TensorBoard hint, its nested-config trial names, status tables and config boxes, scipy's
# warnings from inside the trials, the evaluator's step lines, Ray Train's worker-group banner
# and its per-report line.
TERMINAL_NOISE = ("Checkpoint successfully created", "To visualize your results with TensorBoard",
                  "'index':", "RuntimeWarning", "Trial status:", "started with configuration",
                  "): step ", "Started training worker group", "Reporting training result")


@dataclass(frozen=True)
class Sizes:
    """What each step runs at: the GPU check's sizes, or the CPU check's tiny ones."""

    limits: dict[str, float]
    farm: tuple[str, ...]       # run_farm.py's flags
    speed: tuple[str, ...]      # bench/speed.py's flags in the `speed` step,
    modes: tuple[str, ...]      # ... in the `modes` step
    compile: tuple[str, ...]    # ... and in the `compile` step
    packing: tuple[str, ...]    # bench/packing.py's layouts and models
    packing_classes: int        # ... and its trials: one per class
    packing_epochs: int
    packing_eval_every: int


GPU_TIMING = ("--device", "cuda", "--steps", "10", "--rounds", "2")
CPU_TIMING = ("--device", "cpu", "--steps", "1", "--rounds", "1", "--warmup", "1")
MODES = ("--modes-only", "--modes", "fp32,bf16,channels-last,bf16+channels-last", "--families",
         *IMAGE_FAMILIES)
COMPILE = ("--modes-only", "--modes", "fp32,compile", "--families")

GPU = Sizes(
    limits={"gpu-tests": 25, "smoke-farm": 160, "speed": 60, "modes": 35, "compile": 75,
            "packing": 110},
    farm=("--preset", "smoke", "--gpus-per-trial", "0.25"),
    speed=(*GPU_TIMING, "--preset", "full", "--all-variants", "--warmup", "1",
           "--tabular-epochs", "2"),
    modes=(*GPU_TIMING, "--preset", "full", "--warmup", "2", *MODES),
    compile=(*GPU_TIMING, "--preset", "full", "--warmup", "2", *COMPILE, *IMAGE_FAMILIES),
    packing=("--shares", "0.5", "0.25", "--base", "full"),
    packing_classes=4, packing_epochs=40, packing_eval_every=20)
CPU = Sizes(
    limits={"gpu-tests": 60, "smoke-farm": 300, "speed": 120, "modes": 120, "compile": 240,
            "packing": 300},
    farm=("--preset", "tiny", "--only", "fruit-pairs", "--gpus-per-trial", "0"),
    speed=(*CPU_TIMING, "--preset", "tiny", "--tabular-epochs", "1"),
    modes=(*CPU_TIMING, "--preset", "tiny", *MODES),
    compile=(*CPU_TIMING, "--preset", "tiny", *COMPILE, "fruit-pairs"),
    packing=("--cpus", "2", "--base", "tiny"),
    packing_classes=2, packing_epochs=2, packing_eval_every=1)


@dataclass
class Step:
    name: str
    what: str
    command: list[str] | None  # None: nothing to run (`what` says why)
    parse: Callable[[Path], dict]  # the step's log -> its figures


# --------------------------------------------------------------------------- what each step runs


def needs_cuda(node: ast.AST) -> bool:
    """A `@pytest.mark.skipif(<...cuda...>, ...)` decorator: the suite's 'needs a GPU' mark."""
    return any(isinstance(d, ast.Call) and ast.unparse(d.func).endswith("skipif") and d.args
               and "cuda" in ast.unparse(d.args[0])
               for d in getattr(node, "decorator_list", []))


def gpu_tests() -> list[str]:
    """Node ids of the tests that skip without CUDA (functions and test classes' methods)."""
    ids = []
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            where = path.relative_to(REPO).as_posix()
            if isinstance(node, ast.FunctionDef) and needs_cuda(node):
                ids.append(f"{where}::{node.name}")
            elif isinstance(node, ast.ClassDef):
                ids += [f"{where}::{node.name}::{f.name}" for f in node.body
                        if isinstance(f, ast.FunctionDef) and f.name.startswith("test")
                        and (needs_cuda(node) or needs_cuda(f))]
    return ids


def pytest_counts(log: Path) -> dict:
    """passed / failed / skipped from pytest's last summary line, and why tests skipped."""
    lines = log.read_text().splitlines()
    found = [re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)\b", line)
             for line in lines]
    last = next((pairs for pairs in reversed(found) if pairs), [])
    counts = {word.rstrip("s") if word.startswith("error") else word: int(n)
              for n, word in last}
    return {**counts, "skip reasons": sorted({line.split(": ", 1)[-1] for line in lines
                                              if line.startswith("SKIPPED")})}


STATUS_LINE = re.compile(r"^\[\d+:\d\d\] trials: ")


def periodic_status_lines(lines: list[str]) -> tuple[int, int]:
    """(reports, lines) of the trial status the farm prints every 30 s while trials run (each
    `[m:ss] trials:` line and the table under it), the last report, which lists every trial,
    not counted. Their number grows with the run's wall time, so a busy machine shows more."""
    starts = [i for i, line in enumerate(lines) if STATUS_LINE.match(line)]
    count = 0
    for start in starts[:-1]:
        end = start + 1
        while end < len(lines) and lines[end].startswith("  "):
            end += 1
        count += end - start
    return max(0, len(starts) - 1), count


def farm_summary(path: Path, log: Path) -> dict:
    """The smoke farm's own account: trials, their status, and its phases' seconds; and what
    its terminal showed: how many lines (and how many of them the periodic trial status), and
    which known noise (`TERMINAL_NOISE`) got through."""
    summary = json.loads(path.read_text())
    trials = summary["trials"]
    shown = log.read_text(errors="replace")
    reports, status_lines = periodic_status_lines(shown.splitlines())
    return {"seconds": summary["seconds"], "phases": summary["phases"],
            "families": sorted({t["family"] for t in trials}), "trials": len(trials),
            "trials ok": sum(t["status"] == "ok" for t in trials),
            "evaluator device": (summary.get("evaluator") or {}).get("device"),
            "terminal lines": len(shown.splitlines()),
            "periodic status reports": reports, "periodic status lines": status_lines,
            "terminal noise": [noise for noise in TERMINAL_NOISE if noise in shown]}


def speed_records(log: Path) -> dict:
    """The rows speed.py printed as it measured them: all of them, also after a time-out."""
    return {"records": [json.loads(line[len(SPEED_RECORD):])
                        for line in log.read_text().splitlines()
                        if line.startswith(SPEED_RECORD)]}


def packing_rows(log: Path, classes: int) -> dict:
    """packing.py's rows (a JSON line each), with the share each row gave a trial (on CPU:
    one over the trials the machine held at once)."""
    rows = []
    for line in log.read_text().splitlines():
        if line.startswith("{") and "trial-epochs / h" in line:
            row = json.loads(line)
            rows.append({**row, "classes": classes,
                         "share": row.get("GPU share") or 1 / row["trials at once"]})
    return {"rows": rows}


def plan_steps(args, sizes: Sizes, work: Path) -> list[Step]:
    py, data = sys.executable, (["--data-dir", str(args.data_dir)] if args.data_dir else [])
    tests = gpu_tests()
    speed = [py, str(REPO / "bench" / "speed.py"), *data, "--json", ""]  # rows: from its log
    farm_dir = work / "farm"
    return [
        Step("gpu-tests", "the tests that need a GPU" if tests else "no test asks for CUDA",
             [py, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *tests] if tests
             else None, pytest_counts),
        Step("smoke-farm", "every family of the farm, the real command",
             [py, str(REPO / "run_farm.py"), *sizes.farm, "--local", "--storage-path",
              str(farm_dir), "--name", NAME, *data],
             lambda log: farm_summary(farm_dir / NAME / "summary.json", log)),
        Step("speed", "the farm's step against the reference loop, evaluations, tables",
             [*speed, *sizes.speed], speed_records),
        Step("modes", "the farm's step in fp32, bf16 autocast and channels-last",
             [*speed, *sizes.modes], speed_records),
        Step("compile", "the farm's step with G and D under torch.compile",
             [*speed, *sizes.compile], speed_records),
        Step("packing", "trials per device: throughput at each share",
             [py, str(REPO / "bench" / "packing.py"), *sizes.packing, "--classes",
              str(sizes.packing_classes), "--epochs", str(sizes.packing_epochs),
              "--eval-every", str(sizes.packing_eval_every), *data, "--out",
              str(work / "packing.md")],
             lambda log: packing_rows(log, sizes.packing_classes)),
    ]


# --------------------------------------------------------------------------- running a step


class TreeSampler(Sampler):
    """packing.py's sampler (the GPU's utilisation and memory through nvidia-smi, every half
    second); without a GPU, the CPU use and this process tree's summed RSS in MiB (a page
    shared by several processes counts in each, so an upper bound)."""

    def _read(self) -> tuple[float, float]:
        if self.gpu:
            return super()._read()
        me = psutil.Process()
        rss = 0
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                rss += proc.memory_info().rss
        return psutil.cpu_percent(interval=None), rss / 2**20


def stop_tree(proc: subprocess.Popen) -> None:
    """Kill a step and everything it started: its process group, and any descendant that
    left the group (Ray's workers)."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        family = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for child in family:
        with contextlib.suppress(psutil.Error):
            child.kill()
    proc.wait()


def launch(command: list[str], log: Path, limit: float) -> tuple[int | None, bool]:
    """(exit code, timed out): the command in its own session, its output in `log`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
        try:
            return proc.wait(timeout=limit), False
        except subprocess.TimeoutExpired:
            stop_tree(proc)
            return None, True
        except BaseException:
            stop_tree(proc)
            raise


def run_steps(steps: list[Step], limits: dict[str, float], budget: float | None,
              sampler: Sampler, work: Path) -> list[dict]:
    """Each step in turn, under its own limit plus what earlier steps left unused, never
    into the time reserved for the steps after it; all inside the budget."""
    deadline = time.monotonic() + (budget or sum(limits[s.name] for s in steps))
    results = []
    for index, step in enumerate(steps):
        left = deadline - time.monotonic()
        reserved = sum(limits[later.name] for later in steps[index + 1:])
        granted = min(left, max(limits[step.name], left - reserved))
        results.append(run_step(step, granted, sampler, work))
    return results


def shown(command: list[str]) -> str:
    """The command as a reader would type it in the repository's root."""
    return shlex.join(command).replace(f"{REPO}/", "")


def run_step(step: Step, limit: float, sampler: Sampler, work: Path) -> dict:
    """One step under `limit` seconds; what it printed is parsed even when it failed or ran
    out of time."""
    result = {"name": step.name, "what": step.what, "limit s": limit, "seconds": 0.0,
              "command": shown(step.command) if step.command else None, "figures": {}}
    if step.command is None:
        return {**result, "status": "skipped", "detail": step.what}
    if limit < MIN_STEP_S:
        return {**result, "status": "out of budget", "detail": f"{limit:.0f} s left"}
    log = work / f"{step.name}.log"
    print(f"== {step.name} (up to {limit:.0f} s): {result['command']}", flush=True)
    start = time.time()
    rc, timed_out = launch(step.command, log, limit)
    end = time.time()
    utilisation, memory = sampler.over(start, end)
    status = "timed out" if timed_out else "ok" if rc == 0 else "failed"
    result.update(status=status, rc=rc, seconds=end - start,
                  detail=f"killed after {limit:.0f} s" if timed_out else f"exit {rc}",
                  utilisation=utilisation, memory=memory)
    try:
        result["figures"] = step.parse(log)
    except (OSError, ValueError, KeyError, TypeError) as error:
        result["parse error"] = f"{type(error).__name__}: {error}"
    if status != "ok":
        result["log tail"] = log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
    print(f"== {step.name}: {status} in {end - start:.0f} s", flush=True)
    return result


# --------------------------------------------------------------------------- the report


def cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows), ""]


def status_line(result: dict) -> list[str]:
    """A step's outcome, command and (when it did not end well) the end of its log."""
    lines = [f"Status: **{result['status']}** ({result.get('detail', '')}), "
             f"{result['seconds']:.0f} s of a {result['limit s']:.0f} s limit."]
    if result["command"]:
        lines.append(f"Command: `{result['command']}`")
    if result.get("parse error") and result["status"] == "ok":
        lines.append(f"Its output could not be read: {result['parse error']}")
    if result.get("log tail"):
        lines += ["", "```", *result["log tail"], "```"]
    return lines + [""]


def tests_lines(result: dict) -> list[str]:
    figures = result["figures"]
    counts = ", ".join(f"{v} {k}" for k, v in figures.items() if k != "skip reasons")
    reasons = "; ".join(figures.get("skip reasons", []))
    return [f"pytest: {counts or 'no summary line'}" + (f" (skipped: {reasons})" if reasons
                                                       else "") + ".", ""]


def farm_lines(result: dict) -> list[str]:
    f = result["figures"]
    if not f:
        return ["No summary.json: the farm did not finish.", ""]
    return [f"{f['trials ok']} of {f['trials']} trials ok ({', '.join(f['families'])}); "
            f"evaluator on {f['evaluator device']}; {f['seconds']:.0f} s in all.", "",
            *table(["phase", "seconds"], [[k, float(v)] for k, v in f["phases"].items()])]


def records(results: dict, step: str, section: str) -> list[dict]:
    return [r for r in results[step]["figures"].get("records", []) if r["section"] == section]


def speed_lines(results: dict) -> list[str]:
    steps = records(results, "speed", "step")
    evals = {(r["family"], r["variant"]): r for r in records(results, "speed", "eval")}
    lines = ["The farm's step (its own build/game/`gan_epoch`, device-resident images) against "
             "the plain reference loop (DataLoader, `.to(device)` per batch, `.item()` per "
             "step), medians over rounds; then one evaluation (untrained judge).", "",
             *table(["family", "variant", "batch", "steps / epoch", "farm ms/step",
                     "ref ms/step", "farm / ref", "evaluation s"],
                    [[r["family"], r["variant"], r["batch"], r["steps_per_epoch"],
                      r["farm_ms_step"], r["ref_ms_step"], r["ratio"],
                      evals.get((r["family"], r["variant"]), {}).get("s_per_eval")]
                     for r in steps])]
    tables = records(results, "speed", "tabular")
    if tables:
        lines += ["Tabular families, one epoch on German credit's fit rows:", "",
                  *table(["family", "variant", "rows", "batch", "ms / epoch"],
                         [[r["family"], r["variant"], r["rows"], r["batch"], r["ms_epoch"]]
                          for r in tables])]
    return lines


def modes_lines(results: dict) -> list[str]:
    rows = [{**r, "step": step} for step in ("modes", "compile")
            for r in records(results, step, "mode")]
    if not rows:
        return ["No mode was timed.", ""]
    return ["Speed-up = the fp32 step's ms over this mode's, timed in the same process (bf16: "
            "`torch.autocast(device, dtype=torch.bfloat16)` over the whole epoch; "
            "channels-last: G, D and images in `torch.channels_last`; compile: "
            "`nn.Module.compile()` on G and D, warm-up holding the compilation).", "",
            *table(["step", "family", "variant", "mode", "ms / step", "speed-up",
                    "warm-up s", "status"],
                   [[r["step"], r["family"], r["variant"], r["mode"], r["ms_step"],
                     r["speedup"], r["warmup_s"], r["error"] or "ok"] for r in rows])]


def best_modes(results: dict) -> dict[str, dict]:
    """Per image family, the mode with the largest speed-up over fp32 that ran."""
    best: dict[str, dict] = {}
    for r in records(results, "modes", "mode") + records(results, "compile", "mode"):
        if r["speedup"] and r["speedup"] > best.get(r["family"], {}).get("speedup", 0):
            best[r["family"]] = r
    return best


def packing_lines(result: dict, estimated: dict | None, gpu: bool) -> list[str]:
    rows = (estimated or {}).get("packing") or result["figures"].get("rows", [])
    layout = "GPU share" if gpu else "cores per trial"
    lines = ["`fruit-pairs` trials grown by the real command, one row per layout; the trial "
             "phase from Tune's progress files; sigma = trial phase x trials at once / the "
             "same trials' seconds alone (from `speed`), the slow-down of sharing.", ""]
    return lines + table([layout, "trials at once", "trial phase s", "trial-epochs",
                          "trial-epochs / h", "utilisation %", "sigma", "overhead s / epoch"],
                         [[r.get(layout), r["trials at once"], r["trial phase s"],
                           r["trial-epochs"], r["trial-epochs / h"], r["utilisation %"],
                           r.get("sigma"), r.get("overhead s / epoch")] for r in rows])


def usage_lines(results: list[dict], whole: tuple[float, float], gpu: bool) -> list[str]:
    what = ("GPU utilisation % and GPU memory used (MiB, the whole GPU), nvidia-smi every "
            "0.5 s" if gpu else "the machine's CPU use % and this process tree's summed RSS "
            "(MiB), psutil every 0.5 s")
    return [f"Sampled throughout: {what}. Whole run: mean utilisation {cell(whole[0])} %, "
            f"peak memory {cell(whole[1])} MiB.", "",
            *table(["step", "mean utilisation %", "peak memory MiB"],
                   [[r["name"], r.get("utilisation"), r.get("memory")] for r in results])]


def estimate_lines(estimated: dict | None, gpu: bool, best: dict) -> list[str]:
    if not estimated:
        return ["Not possible: the `speed` step measured no step time.", ""]
    unit = "GPU" if gpu else "device"
    caveat = ([] if gpu else ["**CPU check**: the step times are the tiny preset's models on "
                              "this CPU, so these hours only check the arithmetic.", ""])
    plan = table(["family", "variant", "trials", "trial-epochs", "hours alone"],
                 [[r["family"], r["variant"], r["trials"], r["trial-epochs"],
                   r["hours alone"]] for r in estimated["plan"]])
    wall = table([f"{unit}s", "trials at once", "hours, T + overhead", "hours, sigma x T"],
                 [[w["gpus"], w["slots"], w["hours, T + overhead"], w["hours, sigma x T"]]
                  for w in estimated["wall"]])
    faster = "; ".join(f"{family} {r['mode']} {r['speedup']:.2f}x" for family, r in best.items())
    return [*caveat, *formula_lines(estimated, unit), "",
            f"Untimed trials (family not measured, left out): {estimated['untimed trials']}.",
            "", *plan, *wall,
            f"Fastest measured mode per image family (not in the hours above, which are the "
            f"farm's fp32 step): {faster or 'none measured'}.", ""]


def headline(results: dict, estimated: dict | None, gpu: bool) -> list[str]:
    done = sum(r["status"] == "ok" for r in results.values())
    ratios = ", ".join(f"{r['family']} ({r['variant']}) {r['ratio']:.2f}"
                       for r in records(results, "speed", "step"))
    hours = ", ".join(f"{w['gpus']}: {w['hours, T + overhead']:.2f}-"
                      f"{w['hours, sigma x T']:.2f} h" for w in (estimated or {}).get("wall", []))
    unit = "GPUs" if gpu else "devices (CPU check)"
    return [f"- Steps ok: {done} of {len(results)}.",
            f"- Farm step / reference loop (farm img/s over reference img/s): "
            f"{ratios or 'not measured'}.",
            f"- The full preset's trials on 1, 4, 16 {unit}: {hours or 'not estimated'} "
            "(the extrapolation below says how, and what it leaves out).", ""]


def report(args, sizes: Sizes, gpu: bool, results: list[dict], whole, estimated,
           started: datetime, wall: float) -> list[str]:
    by = {r["name"]: r for r in results}
    device = (subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                              "--format=csv,noheader"], capture_output=True,
                             text=True).stdout.strip() + "; host " if gpu else "CPU only; ")
    lines = [f"# GPU check{'' if gpu else ' (CPU check: --cpu, tiny sizes)'}", "",
             f"- Device: {device}{host_cpu()}, {os.cpu_count()} cores",
             f"- Command: `{command_line()}`",
             f"- Date: {started:%Y-%m-%d %H:%M} UTC; repository at {git_commit()}",
             f"- Versions: python {platform.python_version()}, torch {version('torch')}, "
             f"ray {version('ray')}",
             f"- Wall time {wall:.0f} s (steps' limits {sum(sizes.limits.values()):.0f} s); "
             "data "
             f"`{args.data_dir or 'the farm lookup'}`", "",
             *headline(by, estimated, gpu), "## Steps", "",
             *table(["#", "step", "status", "s", "limit s", "what"],
                    [[i, r["name"], r["status"], r["seconds"], r["limit s"], r["what"]]
                     for i, r in enumerate(results, 1)])]
    sections = [("1. GPU tests", ["gpu-tests"], tests_lines(by["gpu-tests"])),
                ("2. Smoke farm", ["smoke-farm"], farm_lines(by["smoke-farm"])),
                ("3. Speed: the farm's step and the reference loop", ["speed"],
                 speed_lines(by)),
                ("3b. bf16, channels-last and torch.compile", ["modes", "compile"],
                 modes_lines(by)),
                ("4. Packing", ["packing"], packing_lines(by["packing"], estimated, gpu))]
    for title, names, body in sections:
        lines += [f"## {title}", ""]
        for name in names:
            lines += ([f"`{name}`:"] if len(names) > 1 else []) + status_line(by[name])
        if any(by[name]["status"] != "skipped" for name in names):
            lines += body
    lines += ["## 5. Utilisation and memory", "", *usage_lines(results, whole, gpu),
              f"## Extrapolation: the full preset on 1, 4 and 16 {'GPUs' if gpu else 'devices'}",
              "", *estimate_lines(estimated, gpu, best_modes(by))]
    return lines


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def extrapolated(by: dict, sizes: Sizes, data_dir: Path | None) -> dict | None:
    steps = by["speed"]["figures"].get("records", [])
    if not any(r["section"] == "step" for r in steps):
        return None
    return estimate(steps, by["packing"]["figures"].get("rows", []), data_dir,
                    sizes.packing_epochs, sizes.packing_eval_every)


def plain(value):
    """JSON without NaN (not JSON): None in its place, everywhere."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def headline_json(gpu, results, whole, estimated, best, started, wall) -> dict:
    """The figures bench/RESULTS.md would quote first, then every step's own, for
    bench/results/gpu-check.json."""
    by = {r["name"]: r for r in results}
    return plain({
        "name": NAME, "mode": "gpu" if gpu else "cpu", "date": f"{started:%Y-%m-%d %H:%M}",
        "commit": git_commit(), "command": command_line(), "wall s": wall,
        "status": {r["name"]: r["status"] for r in results},
        "farm / reference": {f"{r['family']} ({r['variant']})": r["ratio"]
                             for r in records(by, "speed", "step")},
        "full preset hours": {w["gpus"]: [w["hours, T + overhead"], w["hours, sigma x T"]]
                              for w in (estimated or {}).get("wall", [])},
        "utilisation % mean": whole[0], "peak memory MiB": whole[1],
        "steps": [{k: v for k, v in r.items() if k != "log tail"} for r in results],
        "best modes": {f: {"mode": r["mode"], "speedup": r["speedup"]} for f, r in best.items()},
        "extrapolation": estimated})


# --------------------------------------------------------------------------- main


def parse_limits(pairs: list[str]) -> dict[str, float]:
    limits = {}
    for pair in pairs:
        name, _, seconds = pair.partition("=")
        if name not in GPU.limits or not seconds:
            raise SystemExit(f"--limit {pair}: use STEP=SECONDS, STEP one of "
                             f"{', '.join(GPU.limits)}")
        limits[name] = float(seconds)
    return limits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true",
                        help="the CPU check: the same steps at tiny sizes, no GPU needed")
    parser.add_argument("--data-dir", type=Path,
                        default=SHARED_DATA if SHARED_DATA.is_dir() else None,
                        help="the datasets (default $FARM_SHARED_DATA or ../shared/data when "
                             "it exists, else the farm's own lookup)")
    parser.add_argument("--out", type=Path, help="the markdown report (default "
                        "bench/results/gpu-check.md, gpu-check-cpu.md with --cpu)")
    parser.add_argument("--json", type=Path, help="the headline figures (default "
                        "bench/results/gpu-check.json, gpu-check-cpu.json with --cpu)")
    parser.add_argument("--budget", type=float, help="seconds for all steps together "
                        f"(default: the sum of their limits, {sum(GPU.limits.values()):.0f}; "
                        f"{sum(CPU.limits.values()):.0f} with --cpu)")
    parser.add_argument("--limit", action="append", default=[], metavar="STEP=SECONDS",
                        help="one step's limit (repeatable); steps: " + ", ".join(GPU.limits))
    parser.add_argument("--only", help="comma-separated steps to run (the others are listed "
                                       "as skipped)")
    parser.add_argument("--keep", action="store_true", help="keep the steps' logs and farm")
    args = parser.parse_args()
    gpu = not args.cpu
    if gpu and not has_gpu():
        parser.error("nvidia-smi sees no GPU here; --cpu runs the CPU check")
    sizes = GPU if gpu else CPU
    limits = {**sizes.limits, **parse_limits(args.limit)}
    stem = NAME if gpu else f"{NAME}-cpu"
    out = args.out or REPO / "bench" / "results" / f"{stem}.md"
    json_out = args.json or REPO / "bench" / "results" / f"{stem}.json"
    wanted = set(args.only.split(",")) if args.only else None
    started, clock = datetime.now(timezone.utc), time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f"{stem}-"))
    try:
        with TreeSampler(gpu) as sampler:
            t0 = time.time()
            steps = plan_steps(args, sizes, work)
            chosen = [s for s in steps if wanted is None or s.name in wanted]
            done = {r["name"]: r for r in run_steps(chosen, limits, args.budget, sampler, work)}
            results = [done.get(s.name) or {"name": s.name, "what": s.what, "status": "skipped",
                                            "detail": "not asked for (--only)", "seconds": 0.0,
                                            "limit s": 0.0, "command": None, "figures": {}}
                       for s in steps]
            whole = sampler.over(t0, time.time())
    finally:
        if args.keep:
            print(f"logs and the smoke farm kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    by = {r["name"]: r for r in results}
    estimated = extrapolated(by, sizes, args.data_dir)
    wall = time.monotonic() - clock
    lines = report(args, sizes, gpu, results, whole, estimated, started, wall)
    out.parent.mkdir(parents=True, exist_ok=True)
    emit(lines, out)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(headline_json(gpu, results, whole, estimated,
                                                 best_modes(by), started, wall), indent=1)
                        + "\n")
    print(f"wrote {out} and {json_out}")
    return 0 if all(r["status"] in ("ok", "skipped") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
