"""Downstream protocols (docs/method.md §7): linear probe, fine-tuning, semi-supervised
fine-tuning and transfer, one explicit loop for all of them.

Per epoch: per step set the lr (warm-up + cosine, times each group's layer-decay scale) ->
batch to the device, the training rotation, forward, cross-entropy (label smoothing), backward
-> clip -> step; then rank 0 evaluates on the test split (``data.eval_clips`` clips), logs a
``metrics.jsonl`` row and writes ``classifier-last.pt`` (and ``classifier-best.pt``). At the
end the last model is tested with ``data.test_clips`` clips (logits averaged): top-1/top-5,
per-class accuracy, the confusion matrix, ``results.json`` and a row of the results table.

- linear: the encoder is frozen (no gradients, eval mode); ``data.cache_features`` encodes the
  splits once without augmentation and trains the BN + Linear head on the features.
- finetune: all weights train; AdamW with layer-wise lr decay (embeddings decayed the most,
  block i by ``decay^(depth - i)``, the final LayerNorm as the last block, the head not).
- semi: finetune on :func:`s2v.train.subset.stratified_subset` of the training split.
- transfer: finetune from a checkpoint pretrained on another store (the head is always new).
- scratch: ``checkpoint="scratch"``, a randomly initialised encoder, the baseline of each.

Under torchrun every rank trains on its DistributedSampler share (DDP) and scores a share of
the test split; rank 0 writes.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from s2v.errors import S2VError
from s2v.store import Store
from s2v.train import distributed
from s2v.train.augment import random_rotation
from s2v.train.checkpoint import load_encoder, save_checkpoint
from s2v.train.classifier import Classifier, build_classifier, classifier_state
from s2v.train.config import SCRATCH, EvalConfig, EvalOptimConfig
from s2v.train.data import SkeletonDataset, make_loader
from s2v.train.evaluate import (
    accuracy_metrics,
    gather_rows,
    predict,
    shard,
    write_confusion,
    write_per_class,
)
from s2v.train.model import Encoder, build_encoder, count_params
from s2v.train.pretrain import derive_seed, log, lr_at
from s2v.train.report import append_result, write_json
from s2v.train.sampling import TemporalSampler
from s2v.train.subset import stratified_subset

LAST, BEST = "classifier-last.pt", "classifier-best.pt"


@dataclass
class ProtocolResult:
    """What a protocol run ends with."""

    out: Path
    top1: float  # final test of the last epoch's model, data.test_clips clips
    top5: float
    best_top1: float  # best per-epoch evaluation (data.eval_clips clips), picked on test
    best_epoch: int
    epochs: int  # epochs done
    seconds: float
    results: dict[str, Any]
    model: Classifier  # the trained classifier (this rank's copy, on the training device)


# --------------------------------------------------------------------------------------------
# model and optimiser
# --------------------------------------------------------------------------------------------


def is_scratch(checkpoint: str) -> bool:
    return checkpoint.lower() in SCRATCH


def make_encoder(cfg: EvalConfig) -> Encoder:
    """The encoder a protocol starts from: the checkpoint's EMA teacher (or student), or a
    random initialisation (scratch, from ``run.seed``); built with ``cfg.model`` (drop-path)."""
    torch.manual_seed(cfg.run.seed)
    encoder = build_encoder(cfg.model)
    if not is_scratch(cfg.checkpoint):
        pretrained, _ = load_encoder(cfg.checkpoint, "cpu", cfg.weights)
        try:
            encoder.load_state_dict(pretrained.state_dict())
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[-1].strip()
            raise S2VError(
                f"{cfg.checkpoint}: the encoder does not match the model config ({first})"
            ) from None
    return encoder


def layer_id(name: str, depth: int) -> int:
    """Layer of a classifier parameter for layer-wise lr decay: 0 the embeddings (joint and
    position), i + 1 block i, ``depth`` the final LayerNorm (with the last block, as the
    reference's ``get_layer_id_for_vit``), ``depth + 1`` the head."""
    if name.startswith(("encoder.embed.", "encoder.pos.")):
        return 0
    if name.startswith("encoder.blocks."):
        return int(name.split(".")[2]) + 1
    if name.startswith("encoder."):
        return depth
    return depth + 1


def layer_decay_groups(
    model: Classifier, weight_decay: float, layer_decay: float
) -> list[dict[str, Any]]:
    """Optimiser groups by (layer, decay): ``lr_scale = layer_decay ** (depth + 1 - layer)``;
    no weight decay on biases, 1-D parameters (norms, LayerScale) and position embeddings.
    Frozen parameters are left out."""
    depth = len(model.encoder.blocks)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        layer = layer_id(name, depth)
        no_wd = p.ndim <= 1 or name.endswith(".bias") or ".pos." in name
        group = groups.setdefault(
            (layer, no_wd),
            {
                "params": [],
                "names": [],
                "layer": layer,
                "lr_scale": layer_decay ** (depth + 1 - layer),
                "weight_decay": 0.0 if no_wd else weight_decay,
            },
        )
        group["params"].append(p)
        group["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def make_optimizer(
    groups: list[dict[str, Any]], o: EvalOptimConfig, dev: torch.device
) -> torch.optim.Optimizer:
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    fused = dev.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), fused=fused)


class _FeatureHead(nn.Module):
    """The linear head on cached pooled features (B, D), for DDP (which needs a forward)."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, f: Tensor) -> Tensor:
        return self.head.classify(f)


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def num_classes(store: Store) -> int:
    """Classes of a store: its label names, else the largest label + 1."""
    return store.num_classes or int(store.labels.max()) + 1


def class_names(store: Store) -> list[str]:
    return store.label_names or [f"class {i}" for i in range(num_classes(store))]


def with_sampler(dataset: SkeletonDataset, sampler: TemporalSampler) -> SkeletonDataset:
    """A shallow copy of ``dataset`` (arrays shared) drawing clips with ``sampler``."""
    out = copy.copy(dataset)
    out.sampler = sampler
    return out


@torch.no_grad()
def encode_features(
    model: Classifier, dataset: SkeletonDataset, batch_size: int, workers: int, info: Any
) -> np.ndarray:
    """Pooled features (N, D) float32 of a one-clip dataset, every rank scoring a share."""
    part, positions = shard(dataset, info)
    loader = make_loader(part, batch_size, False, workers, seed=0, drop_last=False)
    out = []
    bar = tqdm(
        loader, desc="features", leave=False, file=sys.stderr, disable=not info.is_main or None
    )
    for x, _, _ in bar:
        out.append(model.features(x.to(info.device, non_blocking=True)).float().cpu())
    feats = torch.cat(out).numpy() if out else np.zeros((0, model.encoder.dim), np.float32)
    return gather_rows(feats, positions, len(dataset))


# --------------------------------------------------------------------------------------------
# the runs
# --------------------------------------------------------------------------------------------


def run_protocol(
    cfg: EvalConfig, store: str | Path | Store, overwrite: bool = False
) -> ProtocolResult:
    """Train and test one protocol run in ``cfg.run.out`` (single process or torchrun)."""
    info = distributed.setup(cfg.run.device)
    try:
        return _run(cfg, store, info, overwrite)
    finally:
        distributed.cleanup()


def run_semi(
    cfg: EvalConfig, store: str | Path | Store, repeats: int = 1, overwrite: bool = False
) -> list[ProtocolResult]:
    """Semi-supervised fine-tuning with seeds ``run.seed + r``, r < repeats (subset and
    training both from the seed); with several repeats each goes to ``out/seed-S`` and
    ``out`` gets the mean and std."""
    if repeats < 1:
        raise S2VError(f"--repeats {repeats}: expected >= 1")
    info = distributed.setup(cfg.run.device)
    try:
        if repeats == 1:
            return [_run(cfg, store, info, overwrite)]
        out = Path(cfg.run.out)
        results = []
        for r in range(repeats):
            one = copy.deepcopy(cfg)
            one.run.seed = cfg.run.seed + r
            one.data.subset_seed = -1 if cfg.data.subset_seed < 0 else cfg.data.subset_seed + r
            one.run.out = str(out / f"seed-{one.run.seed}")
            results.append(_run(one, store, info, overwrite))
        if info.is_main:
            summarise_repeats(cfg, results, out)
        return results
    finally:
        distributed.cleanup()


def summarise_repeats(cfg: EvalConfig, results: list[ProtocolResult], out: Path) -> None:
    """``out/results.json`` and a table row with the mean and sample std over the repeats."""
    top1 = np.array([r.top1 for r in results])
    best = np.array([r.best_top1 for r in results])
    seeds = [r.results["seed"] for r in results]
    summary = {
        "protocol": cfg.protocol,
        "dataset": cfg.dataset,
        "benchmark": cfg.data.benchmark,
        "checkpoint": cfg.checkpoint,
        "fraction": cfg.data.fraction,
        "seeds": seeds,
        "top1_last": top1.tolist(),
        "top1_last_mean": float(top1.mean()),
        "top1_last_std": float(top1.std(ddof=1)),
        "top1_best_mean": float(best.mean()),
        "runs": [str(r.out) for r in results],
    }
    write_json(summary, out / "results.json")
    append_result(
        out,
        {
            "protocol": f"{cfg.protocol} (mean of {len(results)})",
            "dataset": cfg.dataset,
            "benchmark": cfg.data.benchmark,
            "checkpoint": cfg.checkpoint,
            "epochs": results[0].epochs,
            "clips": cfg.data.test_clips,
            "top1_last": summary["top1_last_mean"],
            "top1_std": summary["top1_last_std"],
            "top1_best": summary["top1_best_mean"],
            "fraction": cfg.data.fraction,
            "seed": ",".join(str(s) for s in seeds),
            "run": str(out),
        },
    )
    log(
        f"{cfg.protocol} over seeds {seeds}: top-1 {summary['top1_last_mean']:.2f} "
        f"± {summary['top1_last_std']:.2f} %; {out / 'results.md'}",
        distributed.DistInfo(),
    )


def _run(
    cfg: EvalConfig, store: str | Path | Store, info: distributed.DistInfo, overwrite: bool
) -> ProtocolResult:
    t_start = time.perf_counter()
    out = Path(cfg.run.out)
    if (out / "results.json").exists() and not overwrite:
        raise S2VError(f"{out}: already holds results; pick another --out or pass --overwrite")
    dev, o, d = info.device, cfg.optim, cfg.data
    linear = cfg.head.kind == "linear"
    per_rank = o.batch_size // info.world
    if per_rank < 1 or per_rank * info.world != o.batch_size:
        raise S2VError(f"batch size {o.batch_size} is not divisible by {info.world} ranks")

    # data: the training split (or its labelled subset) and the test split
    st = store if isinstance(store, Store) else Store(store)
    classes, names = num_classes(st), class_names(st)
    train_idx = st.split(d.benchmark, "train")
    subset = None
    if cfg.protocol == "semi" or d.fraction < 1.0:
        seed = cfg.run.seed if d.subset_seed < 0 else d.subset_seed
        pos = stratified_subset(st.labels[train_idx], d.fraction, seed)
        train_idx = train_idx[pos]
        subset = {"fraction": d.fraction, "seed": seed, "indices": train_idx}
    augment = not (linear and d.cache_features)  # cached features: no augmentation
    train_sampler = TemporalSampler(d.sampler, cfg.model.frames, train=augment)
    train_set = SkeletonDataset(
        st, None, sampler=train_sampler, in_memory=d.in_memory, indices=train_idx
    )
    test_set = SkeletonDataset(
        st,
        d.benchmark,
        "test",
        sampler=TemporalSampler(d.sampler, cfg.model.frames, train=False, clips=d.eval_clips),
        in_memory=False,
    )
    if d.in_memory:  # one copy of the arrays for both splits
        test_set.joints, test_set.motion = train_set.joints, train_set.motion
    n_train = len(train_set) // info.world  # this rank's share
    if n_train < per_rank and not (linear and d.cache_features):
        raise S2VError(
            f"{len(train_set)} training samples give no full batch of {per_rank} per rank "
            f"({info.world} ranks): lower --batch-size"
        )
    if len(test_set) == 0:
        raise S2VError(f"{st.path}: the {d.benchmark} test split is empty")

    # model and optimiser: identical initialisation on every rank
    encoder = make_encoder(cfg)
    torch.manual_seed(derive_seed(cfg.run.seed, 1))  # the head's initialisation
    raw = build_classifier(encoder, cfg.head, cfg.model, classes).to(dev)
    groups = layer_decay_groups(raw, o.weight_decay, o.layer_decay)
    optimizer = make_optimizer(groups, o, dev)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(cfg.to_dict(), out / "config.json")
        if subset is not None:
            write_json(subset, out / "subset.json")
        (out / "metrics.jsonl").write_text("")
    source = (
        "randomly initialised"
        if is_scratch(cfg.checkpoint)
        else f"{cfg.weights} of {cfg.checkpoint}"
    )
    log(
        f"{cfg.protocol} on {st.path} {d.benchmark}: {len(train_set)} training samples"
        + (f" ({d.fraction:g} of the split, seed {subset['seed']})" if subset else "")
        + f", {len(test_set)} test, {classes} classes; encoder {source} "
        f"({count_params(raw.encoder) / 1e6:.2f} M params, {'frozen' if linear else 'trained'}); "
        f"{o.epochs} epochs, batch {o.batch_size}, {o.optimizer} lr {o.lr:g}, device {dev}",
        info,
    )

    # cached features (linear probe without augmentation): encode both splits once
    cached: tuple[Tensor, Tensor, Tensor] | None = None
    if linear and d.cache_features:
        t0 = time.perf_counter()
        f_train = encode_features(raw, train_set, per_rank, d.workers, info)
        f_test = encode_features(raw, test_set, per_rank, d.workers, info)
        cached = (
            torch.from_numpy(f_train).to(dev),
            torch.from_numpy(train_set.labels.astype(np.int64)).to(dev),
            torch.from_numpy(f_test).to(dev),
        )
        log(f"features cached in {time.perf_counter() - t0:.1f} s", info)

    model: nn.Module = _FeatureHead(raw.head) if cached is not None else raw
    if info.distributed:
        ids = [dev.index] if dev.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids)

    if cached is not None:
        per_rank = max(1, min(per_rank, n_train))  # features of a tiny split: one batch
    steps_per_epoch = max(1, n_train // per_rank)

    def epoch_batches(epoch: int) -> Any:
        """This epoch's training batches: (x or features, labels) on the device."""
        if cached is not None:
            n = len(cached[0])
            perm = torch.from_numpy(np.random.default_rng([cfg.run.seed, epoch]).permutation(n))
            share = perm[info.rank :: info.world][: n // info.world]
            for k in range(0, len(share) - per_rank + 1, per_rank):
                b = share[k : k + per_rank].to(dev)
                yield cached[0][b], cached[1][b]
            return
        epoch_data = copy.copy(train_set)
        epoch_data.seed = derive_seed(cfg.run.seed, info.rank, epoch)
        loader = make_loader(
            epoch_data,
            per_rank,
            shuffle=True,
            num_workers=d.workers,
            seed=derive_seed(cfg.run.seed, epoch),
            drop_last=True,
            distributed=info.distributed,
            block_window=d.block_window,
        )
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        for x, _, y in loader:
            yield x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)

    def evaluate_epoch() -> tuple[float, float]:
        if cached is not None:
            raw.eval()
            with torch.no_grad():
                logits = raw.head.classify(cached[2]).float().cpu().numpy()
            raw.train()
            labels = test_set.labels.astype(np.int64)
        else:
            logits, labels = predict(raw, test_set, per_rank, d.workers, info, desc="eval")
        m = accuracy_metrics(logits, labels, classes)
        return m["top1"], m["top5"]

    def state(epoch: int, top1: float) -> dict[str, Any]:
        return classifier_state(
            raw,
            {
                "config": cfg.to_dict(),
                "classes": classes,
                "label_names": names,
                "epoch": epoch,
                "top1": top1,
            },
        )

    gen = torch.Generator(device=dev)
    step, epoch_done, best_top1, best_epoch = 0, 0, -1.0, 0
    stop = False
    model.train()
    for epoch in range(o.epochs):
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev)
        seen = 0
        bar = tqdm(
            total=steps_per_epoch,
            desc=f"{cfg.protocol} epoch {epoch}",
            leave=False,
            file=sys.stderr,
            disable=True if not info.is_main else None,
        )
        for inputs, y in epoch_batches(epoch):
            lr = lr_at(step, o, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            if cached is None and cfg.data.rotation > 0:
                gen.manual_seed(derive_seed(cfg.run.seed, info.rank, step))
                inputs = random_rotation(inputs, gen, cfg.data.rotation)
            logits = model(inputs)
            loss = F.cross_entropy(logits, y, label_smoothing=o.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if o.clip_grad > 0:
                nn.utils.clip_grad_norm_(raw.parameters(), o.clip_grad)
            optimizer.step()
            step += 1
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
            bar.update(1)
            stop = cfg.run.max_steps > 0 and step >= cfg.run.max_steps
            if stop:
                break
        bar.close()
        train_loss = distributed.all_reduce_mean(loss_sum / max(seen, 1)).item()
        train_top1 = 100.0 * distributed.all_reduce_mean(correct / max(seen, 1)).item()
        if not math.isfinite(train_loss):
            raise S2VError(f"non-finite training loss at epoch {epoch}: stopped")
        epoch_done = epoch + 1
        top1, top5 = evaluate_epoch()
        if info.is_main:
            row = {
                "epoch": epoch_done,
                "step": step,
                "loss": train_loss,
                "train_top1": train_top1,
                "test_top1": top1,
                "test_top5": top5,
                "lr": lr,
                "seconds": time.perf_counter() - t_start,
            }
            with open(out / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")
            save_checkpoint(state(epoch_done, top1), out / LAST)
            if top1 > best_top1:
                save_checkpoint(state(epoch_done, top1), out / BEST)
        if top1 > best_top1:
            best_top1, best_epoch = top1, epoch_done
        if epoch_done % max(1, cfg.run.log_every) == 0 or stop or epoch_done == o.epochs:
            log(
                f"epoch {epoch_done}/{o.epochs}: loss {train_loss:.4f}, train top-1 "
                f"{train_top1:.1f} %, test top-1 {top1:.2f} % (best {best_top1:.2f} % at "
                f"epoch {best_epoch})",
                info,
            )
        if stop:
            break
        distributed.barrier()

    # the final test: the last epoch's model, test_clips clips, logits averaged
    final = with_sampler(
        test_set, TemporalSampler(d.sampler, cfg.model.frames, train=False, clips=d.test_clips)
    )
    logits, labels = predict(raw, final, max(1, per_rank // d.test_clips), d.workers, info)
    m = accuracy_metrics(logits, labels, classes)
    seconds = time.perf_counter() - t_start
    results = {
        "protocol": cfg.protocol,
        "dataset": cfg.dataset,
        "benchmark": d.benchmark,
        "checkpoint": cfg.checkpoint,
        "weights": None if is_scratch(cfg.checkpoint) else cfg.weights,
        "source_dataset": cfg.source_dataset,
        "transfer": bool(cfg.source_dataset and cfg.dataset and cfg.source_dataset != cfg.dataset),
        "seed": cfg.run.seed,
        "epochs": epoch_done,
        "steps": step,
        "train_samples": len(train_set),
        "test_samples": m["samples"],
        "classes": classes,
        "last": {"top1": m["top1"], "top5": m["top5"], "clips": d.test_clips, "epoch": epoch_done},
        "best": {
            "top1": best_top1,
            "epoch": best_epoch,
            "clips": d.eval_clips,
            "note": "best per-epoch evaluation, picked on the test split (optimistic)",
        },
        "per_class_top1": dict(zip(names, m["per_class"], strict=True)),
        "fraction": d.fraction,
        "subset_seed": None if subset is None else subset["seed"],
        "seconds": seconds,
        "run": str(out),
    }
    if info.is_main:
        write_confusion(m["confusion"], names, out, f"{cfg.protocol} {cfg.dataset} {d.benchmark}")
        write_per_class(m["per_class"], m["confusion"].sum(1), names, out)
        write_json(results, out / "results.json")
        append_result(
            out,
            {
                "protocol": cfg.protocol + (" (scratch)" if is_scratch(cfg.checkpoint) else ""),
                "dataset": cfg.dataset,
                "benchmark": d.benchmark,
                "checkpoint": cfg.checkpoint,
                "epochs": epoch_done,
                "clips": d.test_clips,
                "top1_last": m["top1"],
                "top5_last": m["top5"],
                "top1_best": best_top1,
                "best_epoch": best_epoch,
                "fraction": d.fraction if d.fraction < 1.0 else None,
                "seed": cfg.run.seed,
                "run": str(out),
            },
        )
    log(
        f"{cfg.protocol}: test top-1 {m['top1']:.2f} %, top-5 {m['top5']:.2f} % "
        f"({d.test_clips} clips, last epoch); best epoch {best_epoch}: {best_top1:.2f} % "
        f"({d.eval_clips} clip); {seconds:.0f} s; {out / 'results.json'}",
        info,
    )
    return ProtocolResult(
        out, m["top1"], m["top5"], best_top1, best_epoch, epoch_done, seconds, results, raw
    )


# --------------------------------------------------------------------------------------------
# test a trained classifier
# --------------------------------------------------------------------------------------------


def find_classifier(run_or_ckpt: str | Path, which: str = "last") -> Path:
    """A classifier checkpoint file, or a protocol run's ``classifier-last.pt`` / ``-best.pt``."""
    p = Path(run_or_ckpt)
    if p.is_dir():
        p = p / (LAST if which == "last" else BEST)
    if not p.is_file():
        raise S2VError(f"{p}: no such classifier checkpoint (run linear or finetune first)")
    return p


def load_classifier(
    run_or_ckpt: str | Path, which: str = "last"
) -> tuple[Classifier, EvalConfig, dict[str, Any]]:
    """A trained classifier (``weights_only`` load), its protocol config and checkpoint."""
    path = find_classifier(run_or_ckpt, which)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and weights_only errors come in many types
        raise S2VError(f"{path}: unreadable checkpoint ({exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != "classifier":
        raise S2VError(f"{path}: not a classifier checkpoint (run linear or finetune first)")
    cfg = EvalConfig.from_dict(ckpt["config"])
    model = build_classifier(
        build_encoder(replace(cfg.model, drop_path=0.0)), cfg.head, cfg.model, ckpt["classes"]
    )
    model.load_state_dict(ckpt["model"])
    return model.eval(), cfg, ckpt


def test_classifier(
    run_or_ckpt: str | Path,
    store: str | Path | Store,
    benchmark: str | None = None,
    clips: int = 10,
    out: str | Path | None = None,
    batch_size: int = 32,
    workers: int = 2,
    device: str = "auto",
    which: str = "last",
) -> dict[str, Any]:
    """Test a protocol run's classifier on a store's test split with ``clips`` clips (logits
    averaged): results.json, a table row, confusion.csv/png and per_class.csv in ``out``
    (default ``<run>/test-<benchmark>``). Returns the results dict."""
    info = distributed.setup(device)
    try:
        model, cfg, ckpt = load_classifier(run_or_ckpt, which)
        st = store if isinstance(store, Store) else Store(store)
        benchmark = benchmark or cfg.data.benchmark
        classes = num_classes(st)
        if classes != ckpt["classes"]:
            raise S2VError(
                f"{st.path} has {classes} classes, the classifier {ckpt['classes']}: "
                "fine-tune on this store first"
            )
        if cfg.data.sampler == "crop_resize" and clips > 1:
            raise S2VError(
                "several test clips need the uniform sampler (this model's is crop_resize)"
            )
        run = Path(run_or_ckpt)
        run_dir = run if run.is_dir() else run.parent
        out = Path(out) if out is not None else run_dir / f"test-{benchmark}"
        sampler = TemporalSampler(cfg.data.sampler, cfg.model.frames, train=False, clips=clips)
        test_set = SkeletonDataset(st, benchmark, "test", sampler=sampler)
        t0 = time.perf_counter()
        logits, labels = predict(model.to(info.device), test_set, batch_size, workers, info)
        m = accuracy_metrics(logits, labels, classes)
        names = class_names(st)
        results = {
            "protocol": "test",
            "trained_by": cfg.protocol,
            "classifier": str(find_classifier(run_or_ckpt, which)),
            "checkpoint": cfg.checkpoint,
            "dataset": st.dataset,
            "benchmark": benchmark,
            "epoch": ckpt.get("epoch"),
            "clips": clips,
            "top1": m["top1"],
            "top5": m["top5"],
            "test_samples": m["samples"],
            "per_class_top1": dict(zip(names, m["per_class"], strict=True)),
            "seconds": time.perf_counter() - t0,
        }
        if info.is_main:
            out.mkdir(parents=True, exist_ok=True)
            write_confusion(m["confusion"], names, out, f"test {st.dataset} {benchmark}")
            write_per_class(m["per_class"], m["confusion"].sum(1), names, out)
            write_json(results, out / "results.json")
            append_result(
                out,
                {
                    "protocol": f"test ({cfg.protocol}, {which})",
                    "dataset": st.dataset,
                    "benchmark": benchmark,
                    "checkpoint": cfg.checkpoint,
                    "epochs": ckpt.get("epoch"),
                    "clips": clips,
                    "top1_last": m["top1"],
                    "top5_last": m["top5"],
                    "run": str(out),
                },
            )
        log(
            f"test: top-1 {m['top1']:.2f} %, top-5 {m['top5']:.2f} % on {m['samples']} samples "
            f"({clips} clips); {out / 'results.json'}",
            info,
        )
        return results
    finally:
        distributed.cleanup()
