"""Part B's black box, the random forest, as plain arrays: a generator file can carry it without a
pickle (a pickle runs code when it is loaded; a file that travels must not).

A fitted tree is a few arrays (children, split feature, threshold, class shares per node), so
the forest is those arrays of all its trees end to end. `predict_proba` answers exactly as
sklearn's forest does: the same float32 inputs against the same float64 thresholds, each leaf's
shares normalised as sklearn normalises them, the trees summed in order and divided by their
number. So the rows `tabular-b` picks when sampling from a file are the rows it picks in the
experiment, bit for bit (tests/models/test_forest_arrays.py). It is a few times slower than
sklearn's compiled trees (bench/sample_speed.py), which is why a generator built from an
experiment keeps sklearn's forest and only its file holds this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ARRAYS = ("left", "right", "feature", "threshold", "shares", "roots")
INTEGER = {"left", "right", "feature", "roots"}


@dataclass
class ArrayForest:
    """A fitted forest's trees as arrays; node indices are global (each tree's offset added)."""

    classes_: np.ndarray      # the class labels, under sklearn's name (BlackBox reads it)
    left: np.ndarray          # int64 [nodes], -1 at a leaf
    right: np.ndarray         # int64 [nodes], -1 at a leaf
    feature: np.ndarray       # int64 [nodes]
    threshold: np.ndarray     # float64 [nodes]: a row goes left when x <= threshold
    shares: np.ndarray        # float64 [nodes, classes]: a tree's answer at that leaf
    roots: np.ndarray         # int64 [trees]
    _walk: tuple = field(init=False, repr=False)

    def __post_init__(self):
        # Leaves point to themselves and never send a row right, so every row can take the
        # same steps until all rows stand on leaves.
        leaf = self.left < 0
        own = np.arange(len(self.left))
        children = np.stack([np.where(leaf, own, self.left), np.where(leaf, own, self.right)],
                            axis=1).ravel()
        self._walk = (leaf, children, np.where(leaf, 0, self.feature),
                      np.where(leaf, np.inf, self.threshold))

    @classmethod
    def from_sklearn(cls, forest) -> "ArrayForest":
        parts: dict[str, list] = {name: [] for name in ARRAYS}
        offset = 0
        for estimator in forest.estimators_:
            tree = estimator.tree_
            value = tree.value[:, 0, :].astype(np.float64)
            total = value.sum(axis=1, keepdims=True)
            total[total == 0.0] = 1.0  # sklearn's own guard
            inner = tree.children_left >= 0
            parts["left"].append(np.where(inner, tree.children_left + offset, -1))
            parts["right"].append(np.where(inner, tree.children_right + offset, -1))
            parts["feature"].append(tree.feature)
            parts["threshold"].append(tree.threshold)
            parts["shares"].append(value / total)
            parts["roots"].append([offset])
            offset += tree.node_count
        return cls.from_arrays({name: np.concatenate(values) for name, values in parts.items()},
                               forest.classes_)

    @classmethod
    def from_arrays(cls, arrays: dict, classes) -> "ArrayForest":
        return cls(np.asarray(classes), **{
            name: np.asarray(arrays[name], dtype=np.int64 if name in INTEGER else np.float64)
            for name in ARRAYS})

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAYS}

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """[rows, classes]: the mean of the trees' leaf shares, as sklearn computes it."""
        leaf, children, feature, threshold = self._walk
        X = np.asarray(X, dtype=np.float32).astype(np.float64)  # sklearn's trees read float32
        flat, base = X.ravel(), np.arange(len(X)) * X.shape[1]
        total = np.zeros((len(X), self.shares.shape[1]))
        for root in self.roots:
            node = np.full(len(X), root)
            while not leaf.take(node).all():
                right = flat.take(base + feature.take(node)) > threshold.take(node)
                node = children.take(2 * node + right)
            total += self.shares[node]
        return total / len(self.roots)
