"""Test-time evaluation: k-clip prediction, accuracy metrics, the confusion matrix.

The test protocol (docs/method.md §7): every test sample is cut into k uniformly sampled clips
(``TemporalSampler(train=False, clips=k)``: fixed offsets spread over each segment), the
classifier scores each clip and the k logit vectors are **averaged**. Under torchrun each rank
scores a strided share of the samples (``indices[rank::world]``, no padding duplicates) and
the logits are gathered in the original order.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from s2v.train import distributed
from s2v.train.data import SkeletonDataset, make_loader


def clip_logits(model: nn.Module, x: Tensor) -> Tensor:
    """x: (B, M, T, V, C) or k clips (B, K, M, T, V, C) -> logits (B, classes), the mean of
    the K clips' logits."""
    if x.ndim == 5:
        return model(x)
    B, K = x.shape[:2]
    return model(x.flatten(0, 1)).view(B, K, -1).mean(1)


def gather_rows(rows: np.ndarray, positions: np.ndarray, total: int) -> np.ndarray:
    """Every rank's ``rows`` (n_r, ...) at ``positions`` (n_r,) -> (total, ...) on every rank
    (the identity in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return rows
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (positions, rows))
    out = np.empty((total,) + rows.shape[1:], dtype=rows.dtype)
    for pos, r in parts:
        out[pos] = r
    return out


def shard(dataset: SkeletonDataset, info: distributed.DistInfo) -> tuple[SkeletonDataset, Any]:
    """This rank's strided share of ``dataset`` and the share's positions in it."""
    positions = np.arange(len(dataset))[info.rank :: info.world]
    if info.world == 1:
        return dataset, positions
    part = SkeletonDataset(
        dataset.store, None, sampler=dataset.sampler, indices=dataset.indices[positions]
    )
    if dataset.in_memory:  # share the arrays instead of reading them again
        part.joints, part.motion = dataset.joints, dataset.motion
    return part, positions


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: SkeletonDataset,
    batch_size: int,
    workers: int,
    info: distributed.DistInfo,
    desc: str = "test",
) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, classes) float32, averaged over the dataset sampler's clips, and labels (N,),
    in the dataset's order (all ranks score a share; every rank gets the whole)."""
    part, positions = shard(dataset, info)
    loader = make_loader(part, batch_size, shuffle=False, num_workers=workers, seed=0,
                         drop_last=False)  # fmt: skip
    was_training = model.training
    model.eval()
    out = []
    bar = tqdm(loader, desc=desc, leave=False, file=sys.stderr, disable=not info.is_main or None)
    for x, _, _ in bar:
        out.append(clip_logits(model, x.to(info.device, non_blocking=True)).float().cpu())
    model.train(was_training)
    logits = torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
    logits = gather_rows(logits, positions, len(dataset))
    return logits, dataset.labels.astype(np.int64)


def accuracy_metrics(logits: np.ndarray, labels: np.ndarray, classes: int) -> dict[str, Any]:
    """top1, top5 (%), per-class accuracy (%, NaN for classes absent from the labels), the
    confusion matrix (classes x classes, rows true, columns predicted) and the count."""
    pred = logits.argmax(1)
    k = min(5, logits.shape[1])
    top5 = (np.argsort(-logits, axis=1)[:, :k] == labels[:, None]).any(1)
    conf = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(conf, (labels, pred), 1)
    support = conf.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(support > 0, 100.0 * np.diag(conf) / support, np.nan)
    return {
        "top1": float(100.0 * (pred == labels).mean()) if len(labels) else float("nan"),
        "top5": float(100.0 * top5.mean()) if len(labels) else float("nan"),
        "per_class": per_class,
        "confusion": conf,
        "samples": int(len(labels)),
    }


def write_confusion(conf: np.ndarray, names: list[str], out: Path, title: str = "") -> list[Path]:
    """``confusion.csv`` (a header row and column of class names, counts) and
    ``confusion.png`` (row-normalised) in ``out``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "confusion.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["true \\ predicted", *names])
        for name, row in zip(names, conf, strict=True):
            w.writerow([name, *row.tolist()])
    png = out / "confusion.png"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(names)
    rows = conf.sum(1, keepdims=True)
    norm = np.divide(conf, rows, out=np.zeros(conf.shape), where=rows > 0)
    size = min(4 + 0.18 * n, 24)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(n)
    labels = names if n <= 60 else [str(i) for i in range(n)]
    ax.set_xticks(ticks, labels, rotation=90, fontsize=max(3, 9 - n // 15))
    ax.set_yticks(ticks, labels, fontsize=max(3, 9 - n // 15))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion (row-normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return [csv_path, png]


def write_per_class(
    per_class: np.ndarray, support: np.ndarray, names: list[str], out: Path
) -> Path:
    """``per_class.csv``: class, name, test samples, accuracy (%)."""
    path = out / "per_class.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["class", "name", "samples", "top1"])
        for i, (name, acc, n) in enumerate(zip(names, per_class, support, strict=True)):
            w.writerow([i, name, int(n), "" if np.isnan(acc) else f"{acc:.2f}"])
    return path
