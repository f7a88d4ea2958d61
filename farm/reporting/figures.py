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
        ax.hist(confidences[labels == name], bins=bins, alpha=0.6,
                label=f"{name} (n={np.sum(labels == name)})")
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
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    xy = tsne.fit_transform(both)
    fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=100)
    ax.scatter(*xy[:len(real)].T, s=6, alpha=0.5, label="real", color="tab:green")
    ax.scatter(*xy[len(real):].T, s=6, alpha=0.5, label="synthetic", color="tab:purple")
    ax.set(xticks=[], yticks=[], title=title or "t-SNE: real vs synthetic")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def confusion_figure(matrix, classes, title: str = "") -> plt.Figure:
    """Rows are the true class, columns the prediction. Colours are row-normalised (each row's
    share of its class), so a rare class's mistakes show as clearly as a common one's."""
    matrix = np.asarray(matrix, dtype=np.int64).reshape(len(classes), len(classes))
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    n = len(classes)
    side = min(12.0, max(4.2, 2.2 + 0.33 * n))  # 30 classes: ~12 inches, labels still legible
    fig, ax = plt.subplots(figsize=(side, side * 0.92), dpi=100)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if n <= 12:
        for i, j in np.ndindex(n, n):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if shares[i, j] > 0.5 else "black")
    font = 8 if n <= 20 else 6.5
    ax.set_xticks(range(n), [str(c) for c in classes], rotation=60, ha="right",
                  rotation_mode="anchor", fontsize=font)
    ax.set_yticks(range(n), [str(c) for c in classes], fontsize=font)
    ax.set(xlabel="predicted class", ylabel="true class", title=title or "confusion matrix")
    fig.tight_layout()
    return fig


def curves_figure(series, chosen, metric: str, mode: str, title: str = "") -> plt.Figure:
    """One line per trial (`series`: label -> (epochs, values)); a dot marks each trial's chosen
    epoch (`chosen`: label -> epoch). NaN values (epochs not measured) are left out."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    legend = len(series) <= 10
    for label, (epochs, values) in series.items():
        epochs = np.asarray(epochs, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
        keep = np.isfinite(epochs) & np.isfinite(values)
        if not keep.any():
            continue
        (line,) = ax.plot(epochs[keep], values[keep], lw=1.2, alpha=0.85,
                          label=str(label) if legend else None)
        at = chosen.get(label)
        hit = keep & (epochs == at) if at is not None else np.zeros_like(keep)
        if hit.any():
            ax.plot(epochs[hit][:1], values[hit][:1], "o", ms=6, color=line.get_color(),
                    markeredgecolor="black", zorder=3)
    better = "lower is better" if mode == "min" else "higher is better"
    ax.set(xlabel="epoch", ylabel=metric)
    ax.set_title(f"{title or metric}\n{better}; dot = chosen epoch", fontsize=10)
    ax.grid(alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def class_grid_figure(rows, title: str = "") -> plt.Figure:
    """Per class, up to 6 real and up to 6 synthetic images side by side. `rows` is a list of
    (class name, real uint8 [n, H, W, 3], synthetic uint8 [m, H, W, 3]). The mosaic is one
    array shown with one imshow, so 30 classes draw as fast as one."""
    per_half, pad, grey = 6, 2, 128
    tiles = [a for _, real, synth in rows for a in (real, synth) if len(a)]
    h, w = (np.asarray(tiles[0]).shape[1:3] if tiles else (16, 16))
    cell_h, cell_w = h + pad, w + pad
    half = per_half * cell_w
    gap = cell_w
    mosaic = np.full((max(1, len(rows)) * cell_h + pad, 2 * half + gap + pad, 3), 255, np.uint8)
    for r, (_, real, synth) in enumerate(rows):
        for offset, images in ((0, real), (half + gap, synth)):
            y, x = pad + r * cell_h, pad + offset
            mosaic[y:y + h, x:x + half - pad] = grey  # slots with no image stay grey
            for k, image in enumerate(np.asarray(images)[:per_half]):
                mosaic[y:y + h, x + k * cell_w:x + k * cell_w + w] = _tile(image, h, w)
    height = min(30.0, 0.6 + 8.0 * mosaic.shape[0] / mosaic.shape[1])
    fig, ax = plt.subplots(figsize=(8.8, height), dpi=100)
    ax.imshow(mosaic, interpolation="nearest", aspect="equal")
    ax.set_yticks([pad + r * cell_h + h / 2 for r in range(len(rows))],
                  [str(name) for name, _, _ in rows], fontsize=8)
    ax.set_xticks([pad + half / 2, pad + half + gap + half / 2], ["real", "synthetic"])
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title, pad=18)
    fig.tight_layout()
    return fig


def _tile(image, h: int, w: int) -> np.ndarray:
    """One image as uint8 [h, w, 3]: grey becomes RGB, other sizes are resized (nearest)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    image = image[:, :, :3]
    if image.shape[:2] != (h, w):
        ys = np.arange(h) * image.shape[0] // h
        xs = np.arange(w) * image.shape[1] // w
        image = image[ys][:, xs]
    return image.astype(np.uint8, copy=False)


def save(fig: plt.Figure, path: Path) -> Path:
    """Write a PNG atomically and free the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path
