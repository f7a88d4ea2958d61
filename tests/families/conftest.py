"""A tiny three-colour image dataset with a judge trained on it, for the image families."""

import numpy as np
import pytest
import torch

from farm.config.classifiers import JudgeConfig
from farm.data.trial_data import ImageData
from farm.metrics.judge import train_judge


@pytest.fixture(scope="module")
def data():
    return colour_data()


def colour_data() -> ImageData:
    """Three colours, 12 images each, with a tiny judge trained on them."""
    rng = np.random.default_rng(0)
    colours = np.array([[220, 30, 30], [30, 200, 40], [40, 40, 220]], dtype=np.uint8)
    labels = np.repeat(np.arange(3), 12)
    images = np.clip(colours[labels][:, None, None, :] + rng.integers(-20, 20, (36, 64, 64, 3)),
                     0, 255).astype(np.uint8)
    x = torch.as_tensor(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    judge = train_judge(x, torch.as_tensor(labels), 3, JudgeConfig(arch="tiny", epochs=3),
                        progress=None, classes=("red", "green", "blue"))
    features = judge.features(x).numpy()
    return ImageData("colours", images, labels, ("red", "green", "blue"), judge.payload(),
                     {k: features[labels == k] for k in range(3)})
