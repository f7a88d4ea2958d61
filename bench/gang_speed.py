"""Tabular trial-epochs a second: trials alone against the same trials grown as one gang
(issue 21; farm.tune.gang).

For each tabular-a variant of the chosen preset, on one table: M trials that differ in their
seeds, trained alone one after another with the farm's `gan_epoch`, and as one gang with the
farm's `stacked_epoch`, the same number of epochs each, in rounds of alternating order. A
trial-epoch is one trial's epoch; the figure is trial-epochs a second of training, and with
the family's evaluation added at its `eval_every` (the evaluation is the same per member either
way, one `evaluate` of an ordinary generator, so it is timed once per variant). Torch runs on
`--threads` threads (1: how the farm runs a 1-CPU trial). Prints a markdown table and writes
bench/results/gang-speed.json; asserts nothing about the numbers.

    .venv/bin/python bench/gang_speed.py --data-dir ../shared/data            # ~3 minutes
    .venv/bin/python bench/gang_speed.py --widths 1 2 4 8 16 --epochs 20 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common import command_line, emit, git_commit, host_cpu  # noqa: E402
from farm.config.family_params import params_from  # noqa: E402
from farm.config.load import load_config  # noqa: E402
from farm.config.plan import plan_trials, select_families  # noqa: E402
from farm.data.prepare_tables import prepare_table  # noqa: E402
from farm.families.kinds import kind_of  # noqa: E402
from farm.gan.gan_loop import gan_epoch, shuffled_batches  # noqa: E402
from farm.gan.stacked import stack_pairs, stacked_batches, stacked_epoch  # noqa: E402

SHARED_DATA = Path(os.environ.get("FARM_SHARED_DATA", REPO.parent / "shared" / "data"))
FILES = {"german_credit": "german_credit/german_credit.arff", "diabetes": "diabetes/diabetes.arff"}


def one_of_each_variant(config: dict, dataset: str) -> list[dict]:
    trials = plan_trials(select_families(config, ["tabular-a"]), 0)
    seen, out = set(), []
    for t in trials:
        if t["dataset"] == dataset and t["variant"] not in seen:
            seen.add(t["variant"])
            out.append(t)
    return out


def built(kind, params, data, seeds):
    pairs = []
    for seed in seeds:
        torch.manual_seed(seed)
        pairs.append(kind.build(params, data, torch.device("cpu")))
    return pairs


def time_alone(kind, params, data, seeds, epochs: int) -> float:
    """Seconds for len(seeds) trials, one after another, `epochs` epochs each (after one)."""
    real = kind.real_rows(data, torch.device("cpu"))
    total = 0.0
    for seed, pair in zip(seeds, built(kind, params, data, seeds)):
        game = kind.game(params, data, pair, torch.device("cpu"))
        order = torch.Generator().manual_seed(seed)
        gan_epoch(pair, shuffled_batches(real, params.batch_size, order), game, 1)
        start = time.perf_counter()
        for epoch in range(2, epochs + 2):
            gan_epoch(pair, shuffled_batches(real, params.batch_size, order), game, epoch,
                      sync=False)
        total += time.perf_counter() - start
    return total


def time_gang(kind, params, data, seeds, epochs: int) -> float:
    """Seconds for the same trials as one gang, `epochs` epochs (after one)."""
    real = kind.real_rows(data, torch.device("cpu"))
    pairs = built(kind, params, data, seeds)
    pair = stack_pairs(pairs, [params.lr_g] * len(seeds), [params.lr_d] * len(seeds),
                       (params.beta1, params.beta2))
    game = kind.gang_game(params, data, pair, len(seeds), torch.device("cpu"))
    orders = [torch.Generator().manual_seed(s) for s in seeds]
    stacked_epoch(pair, stacked_batches(real, len(seeds), params.batch_size, orders), game, 1)
    start = time.perf_counter()
    for epoch in range(2, epochs + 2):
        stacked_epoch(pair, stacked_batches(real, len(seeds), params.batch_size, orders), game,
                      epoch)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    ap.add_argument("--preset", default="full")
    ap.add_argument("--dataset", default="german_credit", choices=sorted(FILES))
    ap.add_argument("--widths", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--epochs", type=int, default=10, help="timed epochs per trial and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "gang-speed.json")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = args.data_dir / FILES[args.dataset]
    if not path.is_file():
        sys.exit(f"{path}: no such file (pass --data-dir)")
    config = load_config(REPO / "trials", args.preset)
    rows, records = [], []
    with tempfile.TemporaryDirectory(prefix="bench-gang-") as tmp:
        prepared = prepare_table(args.dataset, path, None, config["data"], Path(tmp), 0)
        data = prepared.trial_data
        for trial in one_of_each_variant(config, args.dataset):
            kind, params = kind_of(trial["kind"]), params_from(trial["kind"], trial["params"])
            torch.manual_seed(0)
            probe = kind.build(params, data, torch.device("cpu")).generator
            start = time.perf_counter()
            kind.evaluate(probe, params, data, 0)
            evaluation = time.perf_counter() - start
            every = trial["eval_every"]
            for width in args.widths:
                seeds = list(range(width))
                alone = gang = 0.0
                for r in range(args.rounds):  # alternating order
                    first, second = (time_alone, time_gang) if r % 2 == 0 else \
                        (time_gang, time_alone)
                    for fn in (first, second):
                        seconds = fn(kind, params, data, seeds, args.epochs)
                        if fn is time_alone:
                            alone += seconds
                        else:
                            gang += seconds
                trial_epochs = width * args.epochs * args.rounds
                rec = {"variant": trial["variant"], "width": width,
                       "alone_ms_per_trial_epoch": 1000 * alone / trial_epochs,
                       "gang_ms_per_trial_epoch": 1000 * gang / trial_epochs,
                       "eval_s": evaluation, "eval_every": every}
                rec["alone_trial_epochs_per_s"] = trial_epochs / alone
                rec["gang_trial_epochs_per_s"] = trial_epochs / gang
                rec["train_speedup"] = alone / gang
                with_eval = evaluation / every * 1000  # ms per trial-epoch, either way
                rec["speedup_with_eval"] = (rec["alone_ms_per_trial_epoch"] + with_eval) / \
                    (rec["gang_ms_per_trial_epoch"] + with_eval)
                records.append(rec)
                print(json.dumps(rec), flush=True)
                rows.append(f"| {trial['variant']} | {width} | "
                            f"{rec['alone_trial_epochs_per_s']:.1f} | "
                            f"{rec['gang_trial_epochs_per_s']:.1f} | "
                            f"**{rec['train_speedup']:.2f}x** | {evaluation:.2f} s / {every} | "
                            f"{rec['speedup_with_eval']:.2f}x |")
    lines = [f"# Gang speed: tabular-a on {args.dataset}", "",
             f"Device: {host_cpu()}, {args.threads} thread(s); commit {git_commit()}; "
             f"`{command_line()}`", "",
             f"{args.epochs} timed epochs per trial per round, {args.rounds} rounds in "
             "alternating order; the `full`-preset settings of each variant.", "",
             "| variant | trials | alone: trial-epochs / s | gang | speed-up (training) | "
             "evaluation | speed-up with evaluation |",
             "|---|---:|---:|---:|---:|---:|---:|", *rows, ""]
    emit(lines, args.out)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"commit": git_commit(), "device": host_cpu(),
                                     "threads": args.threads, "dataset": args.dataset,
                                     "command": command_line(), "rows": records}, indent=1) + "\n")


if __name__ == "__main__":
    main()
