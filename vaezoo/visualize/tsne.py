"""A t-SNE (scikit-learn) of the test posterior means, coloured by class label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps

from vaezoo.visualize import Scene, picture
from vaezoo.visualize.figures import figure, save


def skip(scene: Scene) -> str | None:
    if not scene.labels_are_classes:
        return "the data has no class labels"
    return "fewer than 10 test examples" if len(scene.x) < 10 else None


def embed(codes: np.ndarray, seed: int) -> np.ndarray:
    """2-D t-SNE coordinates of codes [N, D] (PCA start, perplexity capped for small N).

    One OpenMP thread: on a few shared cores scikit-learn's threads oversubscribe them and a 300-point
    t-SNE takes 40 s instead of 2 s.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    perplexity = min(30.0, (len(codes) - 1) / 3)
    init = "pca" if codes.shape[1] >= 2 else "random"
    with threadpool_limits(1):
        return TSNE(2, perplexity=perplexity, init=init, random_state=seed).fit_transform(codes)


@picture(
    "tsne",
    "labelled data",
    title="t-SNE of the test posterior means, by class",
    uses="posterior means and labels of the test images (pictures.tsne_points of them)",
    skip=skip,
)
def draw(scene: Scene, path: Path) -> Path:
    n = min(scene.tsne_points, len(scene.x))
    codes = scene.codes[:n].float().cpu().numpy().astype(np.float64)
    labels = scene.y[:n].cpu().numpy()
    xy = embed(codes, scene.seed)
    fig = figure(6.4, 5.6)
    ax = fig.add_subplot()
    cmap = "tab10" if labels.max() < 10 else "tab20"
    for label in np.unique(labels):
        mask = labels == label
        ax.scatter(*xy[mask].T, s=8, label=str(label), color=colormaps[cmap](int(label) % 20))
    ax.legend(title="label", markerscale=2, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    ax.set_title(f"t-SNE of {n} test posterior means ({scene.codes.shape[1]}-D)", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    return save(fig, path)
