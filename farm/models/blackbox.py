"""The black box of part B: the seeds' random forest (sklearn defaults, 100 trees) trained on the
70% train split. Its confidence for the positive class is what the `tabular-b` generator is asked
to hit. It has no gradient, which is the whole difficulty of part B.

The positive class is the target's second declared category (ARFF header order): `bad` for
German credit, `tested_positive` for diabetes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score, roc_curve

from farm.infra.errors import DataError


@dataclass
class BlackBox:
    forest: RandomForestClassifier
    features: np.ndarray       # indices of the encoded row the forest reads
    positive: str              # the class whose probability is "the confidence"
    negative: str

    @property
    def _column(self) -> int:
        return int(np.flatnonzero(self.forest.classes_ == self.positive)[0])

    def confidence_np(self, features: np.ndarray) -> np.ndarray:
        return self.forest.predict_proba(features)[:, self._column]

    def confidence(self, features: torch.Tensor) -> torch.Tensor:
        """Confidence for rows held as a tensor (a host round trip: the forest lives on CPU)."""
        values = self.confidence_np(features.detach().float().cpu().numpy())
        return torch.as_tensor(values, dtype=torch.float32, device=features.device)

    def labels(self, confidence: np.ndarray) -> np.ndarray:
        return np.where(np.asarray(confidence) >= 0.5, self.positive, self.negative).astype(object)


def fit_black_box(X: np.ndarray, y: np.ndarray, categories: tuple[str, ...], features: np.ndarray,
                  seed: int, where: str = "") -> BlackBox:
    """Part B needs a yes/no answer: a binary target, its second category the positive one."""
    if len(categories) != 2:
        raise DataError(f"part B (tabular-b) steers a binary classifier's confidence; the target "
                        f"has {len(categories)} classes ({', '.join(categories[:5])}"
                        f"{' ...' if len(categories) > 5 else ''}). Run --only tabular-a, or "
                        "pick a two-class target with --target", where=where or None)
    forest = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    forest.fit(X, np.asarray(y, dtype=str))
    return BlackBox(forest, np.asarray(features), positive=categories[1], negative=categories[0])


def black_box_report(bb: BlackBox, X_test: np.ndarray, y_test: np.ndarray) -> dict:
    """The report's figures 8-13 as numbers: accuracy, AUC, ROC, per-class confidences."""
    confidence = bb.confidence_np(X_test)
    truth = np.asarray(y_test, dtype=str) == bb.positive
    fpr, tpr, _ = roc_curve(truth, confidence)
    return {
        "accuracy": float(np.mean((confidence >= 0.5) == truth)),
        "auc": float(roc_auc_score(truth, confidence)),
        "positive_class": bb.positive,
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
        "confidence_positive_rows": confidence[truth].tolist(),
        "confidence_negative_rows": confidence[~truth].tolist(),
    }
