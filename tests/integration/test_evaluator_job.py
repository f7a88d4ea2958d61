"""The evaluator as a real Ray Train job: two CPU workers, DDP over gloo, results from rank 0."""

from __future__ import annotations

import numpy as np

from farm.config.classifiers import EvaluatorConfig
from farm.evaluation.evaluator import Task, evaluate, scaling


def _blobs(n, rng):
    labels = rng.integers(0, 3, n)
    images = rng.integers(0, 60, (n, 16, 16, 3)).astype(np.uint8)
    images[np.arange(n), :, :, labels] += 150
    return Task("blobs", images, labels)


def test_two_data_parallel_workers_train_every_task(ray_local, tmp_path):
    rng = np.random.default_rng(0)
    easy, test = _blobs(96, rng), _blobs(45, rng)
    wrong = Task("wrong", easy.images, (easy.labels + 1) % 3)
    config = EvaluatorConfig(arch="tiny", epochs=6, batch_size=16, augment=False, workers=2,
                             seeds=2)
    out = evaluate("blobs", [Task("easy", easy.images, easy.labels), wrong], test,
                   ["red", "green", "blue"], config, tmp_path, use_gpu=False)
    assert out["workers"] == 2 and out["device"] == "cpu"
    easy_result, wrong_result = out["results"]["easy"], out["results"]["wrong"]
    assert easy_result["accuracy"] > 0.8 > 0.2 > wrong_result["accuracy"]
    assert sum(map(sum, easy_result["confusion"])) == 2 * 45  # summed over the two seeds
    assert len(easy_result["accuracies"]) == 2 and easy_result["seeds"] == [0, 1]
    assert set(easy_result["per_class"]) == {"red", "green", "blue"}


def test_scaling_without_gpus_is_one_worker_with_the_node_cpus(ray_local):
    shape = scaling(EvaluatorConfig(), use_gpu=False)
    assert shape == {"num_workers": 1, "use_gpu": False, "resources_per_worker": {"CPU": 2.0}}
    shape = scaling(EvaluatorConfig(workers=2), use_gpu=False)
    assert shape["num_workers"] == 2 and shape["resources_per_worker"] == {"CPU": 1.0}
