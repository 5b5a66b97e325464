"""Results and reports: ``results.json``, the results table, loss and accuracy curves.

Every protocol run writes ``results.json`` and appends one row to ``results.csv`` in its run
directory; ``results.md`` is rewritten from the CSV each time, so both always agree. The
table keeps the last-epoch accuracy (the final test, k clips) apart from the best epoch's
(the per-epoch evaluation, picked on the test split as the reference does: optimistic).

``report(run_dir)`` collects every ``metrics.jsonl`` (pretraining and protocols) and every
``results.csv`` below a directory into PNG curves and one ``report.md``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

ROW_FIELDS = (
    "protocol",
    "dataset",
    "benchmark",
    "checkpoint",
    "epochs",
    "clips",
    "top1_last",
    "top5_last",
    "top1_std",
    "top1_best",
    "best_epoch",
    "fraction",
    "seed",
    "run",
)
HEADERS = {
    "protocol": "protocol",
    "dataset": "dataset",
    "benchmark": "benchmark",
    "checkpoint": "checkpoint",
    "epochs": "epochs",
    "clips": "test clips",
    "top1_last": "top-1 % (last epoch)",
    "top5_last": "top-5 % (last epoch)",
    "top1_std": "top-1 std",
    "top1_best": "top-1 % (best epoch, 1 clip, picked on test)",
    "best_epoch": "best epoch",
    "fraction": "labelled fraction",
    "seed": "seed",
    "run": "run",
}


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.2f}"
    return str(value)


def write_json(data: dict[str, Any], path: str | Path) -> None:
    """JSON with numpy values converted; written to a temporary name, then renamed."""

    def plain(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            return [plain(x) for x in v.tolist()]
        if isinstance(v, (np.floating, float)):
            return None if math.isnan(float(v)) else float(v)
        if isinstance(v, np.integer):
            return int(v)
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(plain(data), indent=2) + "\n")
    tmp.replace(path)


def read_table(path: str | Path) -> list[dict[str, str]]:
    """The rows of a ``results.csv`` (empty when absent)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Rows as a Markdown table; columns empty in every row are left out."""
    cols = [c for c in ROW_FIELDS if any(_fmt(r.get(c)) for r in rows)]
    lines = [
        "| " + " | ".join(HEADERS[c] for c in cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def append_result(run_dir: str | Path, row: dict[str, Any]) -> None:
    """Append ``row`` (keys from :data:`ROW_FIELDS`) to ``run_dir/results.csv`` and rewrite
    ``results.md`` from it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "results.csv"
    new = not path.is_file()
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=ROW_FIELDS)
        if new:
            w.writeheader()
        w.writerow({k: _fmt(row.get(k)) for k in ROW_FIELDS})
    (run_dir / "results.md").write_text(markdown_table(read_table(path)))


# --------------------------------------------------------------------------------------------
# curves and the report
# --------------------------------------------------------------------------------------------


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` (damaged lines skipped)."""
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def plot_curves(rows: list[dict[str, Any]], title: str, path: Path) -> Path:
    """Loss (against step for pretraining, epoch for protocols) and, when logged, train and
    test top-1 against epoch, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_acc = any("test_top1" in r for r in rows)
    x_key = "epoch" if has_acc else "step"
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5.5, 3.6))
    axes = np.atleast_1d(axes)
    pts = [(r[x_key], r["loss"]) for r in rows if r.get("loss") is not None and x_key in r]
    if pts:
        axes[0].plot(*zip(*pts, strict=True), lw=1.2)
    axes[0].set_xlabel(x_key)
    axes[0].set_ylabel("training loss")
    axes[0].grid(alpha=0.3)
    if has_acc:
        for key, label in (("train_top1", "train"), ("test_top1", "test")):
            pts = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None]
            if pts:
                axes[1].plot(*zip(*pts, strict=True), marker=".", lw=1.2, label=label)
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("top-1 %")
        axes[1].legend()
        axes[1].grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Curves of every ``metrics.jsonl`` below ``run_dir`` and a ``report.md`` with the rows of
    every ``results.csv`` below it; written to ``out`` (default ``run_dir/report``).

    Returns the path of ``report.md``.
    """
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Report: {run_dir}", ""]
    rows: list[dict[str, str]] = []
    for table in sorted(run_dir.rglob("results.csv")):
        if out in table.parents:
            continue
        rows += read_table(table)
    if rows:
        lines += ["## Results", "", markdown_table(rows)]
    images = []
    for metrics in sorted(run_dir.rglob("metrics.jsonl")):
        data = read_metrics(metrics)
        if not data:
            continue
        rel = metrics.parent.relative_to(run_dir)
        name = "-".join(rel.parts) if rel.parts else run_dir.name
        png = plot_curves(data, str(rel) if rel.parts else run_dir.name, out / f"curves-{name}.png")
        images.append((name, png))
    if images:
        lines += ["## Curves", ""]
        lines += [f"### {name}\n\n![{name}]({png.name})\n" for name, png in images]
    if not rows and not images:
        lines += ["No results.csv or metrics.jsonl found."]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
