"""Pictures a person would rather look at than read: matplotlib figures, saved as PNG files for
the report and logged to TensorBoard. Each function returns a Figure and draws nothing else."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on workers or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def confidence_scatter(requested, achieved, title: str = "") -> plt.Figure:
    """Requested vs achieved black-box confidence; a perfect link lies on the diagonal."""
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=100)
    ax.scatter(requested, achieved, s=6, alpha=0.4, color="tab:blue")
    ax.plot([0, 1], [0, 1], color="black", lw=1, ls="--", label="achieved = requested")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="requested confidence c",
           ylabel="black box's confidence BB(G(z, c))", title=title or "confidence link")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def confidence_histograms(confidences, labels, title: str = "") -> plt.Figure:
    """The black box's confidence for the positive class, one histogram per (predicted) class."""
    confidences, labels = np.asarray(confidences), np.asarray(labels).astype(str)
    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=100)
    bins = np.linspace(0, 1, 21)
    for name in sorted(set(labels)):
        ax.hist(confidences[labels == name], bins=bins, alpha=0.6, label=f"{name} (n={np.sum(labels == name)})")
    ax.set(xlabel="confidence for the positive class", ylabel="rows", title=title or "confidences")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def roc_figure(fpr, tpr, auc: float, title: str = "") -> plt.Figure:
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=100)
    ax.plot(fpr, tpr, color="tab:orange", label=f"AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title or "ROC")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def tsne_figure(real, synthetic, seed: int = 0, title: str = "", max_rows: int = 600) -> plt.Figure:
    """Real and synthetic rows in one 2-D t-SNE embedding (fitted on both together)."""
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    real = np.asarray(real)[rng.permutation(len(real))[:max_rows]]
    synthetic = np.asarray(synthetic)[rng.permutation(len(synthetic))[:max_rows]]
    both = np.vstack([real, synthetic]).astype(np.float64)
    perplexity = float(min(30, max(5, (len(both) - 1) // 3)))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(both)
    fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=100)
    ax.scatter(*xy[:len(real)].T, s=6, alpha=0.5, label="real", color="tab:green")
    ax.scatter(*xy[len(real):].T, s=6, alpha=0.5, label="synthetic", color="tab:purple")
    ax.set(xticks=[], yticks=[], title=title or "t-SNE: real vs synthetic")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path: Path) -> Path:
    """Write a PNG atomically and free the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path
