"""Does the evaluator's protocol let extra images help, before any GAN is good? One checkpoint.

The question behind issue 18's first complaint: under the old protocol (`mix: share`) even
pure noise cost real + noise 0.145 against real alone (laptop-1), so no pool could show a gain.
This trains, with the evaluator's own code and each classifier seed, the ceiling, real + as
many noise images as the pool, and real + one checkpoint's images (the export's own draw), all
with one `mix`, and gives each gain over real alone paired by seed with its 95% interval.
It runs in-process (no Ray), for a checkpoint of a run that never finished.

    .venv/bin/python bench/protocol_check.py /work/runs/<name> --checkpoint tune/<trial>/checkpoint_000001 \\
        [--mix extra] [--seeds 3] [--epochs N] [--out file.md]

Writes bench/results/protocol-check.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common import emit, git_commit
from image_epochs import prepared_dataset, real_and_test

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.config.classifiers import evaluator_config  # noqa: E402
from farm.evaluation.evaluate_pools import noise_control, real_plus  # noqa: E402
from farm.evaluation.evaluator import REAL, seed_configs, test_classifier, train_classifier  # noqa: E402
from farm.gan.checkpoint import load_state  # noqa: E402
from farm.metrics.paired import paired_gain  # noqa: E402
from farm.models.classifier import scores  # noqa: E402
from farm.pipeline.export import draw_images  # noqa: E402

RESULTS = REPO / "bench" / "results" / "protocol-check.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--checkpoint", required=True, help="a trial checkpoint folder, relative "
                                                            "to the experiment")
    parser.add_argument("--dataset", default="fids30")
    parser.add_argument("--mix", default="extra")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, help="evaluator passes (default: the run's)")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    prepared, config = prepared_dataset(args.experiment, args.dataset, args.data_dir)
    overrides = {"mix": args.mix, "seeds": args.seeds}
    if args.epochs:
        overrides["epochs"] = args.epochs
    base = dataclasses.replace(evaluator_config(config.get("evaluator")), **overrides)
    real, held_out = real_and_test(prepared)
    train, test, classes = real.labels, held_out.labels, prepared.images.classes
    folder = args.experiment / args.checkpoint
    spec = json.loads((folder.parent / "params.json").read_text())["trial"]
    per_class = int(config["data"].get("images", {}).get("synthetic_per_class", 32))
    by_class, _, _ = draw_images(spec, folder, prepared.trial_data, per_class)
    x = np.concatenate([by_class[name] for name in classes])
    y = np.concatenate([np.full(len(by_class[n]), i, dtype=np.int64)
                        for i, n in enumerate(classes)])
    tasks = [real, noise_control(real, len(y), len(classes), base.seed),
             real_plus("real+synthetic", real, x, y)]
    accuracies: dict[str, list[float]] = {t.name: [] for t in tasks}
    started = time.perf_counter()
    for config_seed in seed_configs(base):
        teacher = None
        for task in tasks:
            model, _ = train_classifier(task, len(classes), config_seed, torch.device("cpu"),
                                        say=lambda _line: None, teacher=teacher)
            teacher = model if task.name == REAL else teacher
            matrix = test_classifier(model, held_out, len(classes), torch.device("cpu"))
            accuracies[task.name].append(scores(matrix, classes)["accuracy"])
            print(f"seed {config_seed.seed} {task.name}: {accuracies[task.name][-1]:.3f} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    gains = {name: paired_gain(accs, accuracies[REAL]) for name, accs in accuracies.items()
             if name != REAL}
    over_noise = paired_gain(accuracies["real+synthetic"], accuracies["real+noise"])
    result = {"commit": git_commit(),
              "experiment": str(args.experiment), "checkpoint": args.checkpoint,
              "epoch": int(load_state(folder)["epoch"]), "protocol": base.describe(),
              "test_images": int(len(test)), "train_images": int(len(train)),
              "synthetic_images": int(len(y)), "accuracies": accuracies, "gains": gains,
              "synthetic_over_noise": over_noise,
              "minutes": round((time.perf_counter() - started) / 60, 1)}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# Protocol check: {args.checkpoint} ({args.dataset})", "",
             f"- protocol: {base.describe()}",
             f"- {len(train)} real train images, {len(y)} synthetic, {len(test)} test images "
             f"(one is {1 / len(test):.4f}), {result['minutes']} min", "",
             "| trained on | accuracy per seed | mean | gain over real [95%] |", "|---|---|---|---|"]
    for name, accs in accuracies.items():
        gain = gains.get(name)
        cell = "" if gain is None else (f"{gain['mean']:+.3f} [{gain['ci'][0]:+.3f}, "
                                        f"{gain['ci'][1]:+.3f}]" if gain["ci"] else
                                        f"{gain['mean']:+.3f}")
        lines.append(f"| {name} | {' / '.join(f'{a:.3f}' for a in accs)} | "
                     f"{np.mean(accs):.3f} | {cell} |")
    ci = over_noise["ci"]
    lines.append(f"\nreal + synthetic over real + noise: {over_noise['mean']:+.3f}"
                 + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""))
    emit(lines, args.out)


if __name__ == "__main__":
    main()
