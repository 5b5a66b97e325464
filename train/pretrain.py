"""Skeleton2vec pretraining: one explicit loop (nanoGPT style), docs/method.md §5-§6.

Per optimiser step: set the lr for this step -> ``accum`` micro-steps (batch to the device,
rotate, mask, teacher targets on the unmasked clip, student prediction, masked MSE, backward;
DDP syncs gradients on the last micro-step only) -> clip -> AdamW step -> EMA teacher update
-> log. At each epoch end rank 0 writes ``checkpoint-latest.pt`` (and every ``ckpt_every``
epochs ``checkpoint-epXXXX.pt``).

Reproducibility. Everything random in an epoch is derived from (seed, epoch): the loader's
shuffling and worker seeds (a fresh loader per epoch) and the main-process sampling generator;
rotations and masks from (seed, rank, step, micro-step). So a resumed run replays the same
batches and losses: at an epoch boundary directly, mid-epoch (``run.max_steps`` stops) by
skipping the consumed batches of that epoch.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from s2v.errors import S2VError
from s2v.store import Store
from s2v.train import distributed
from s2v.train.augment import random_rotation
from s2v.train.checkpoint import (
    LATEST,
    epoch_name,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from s2v.train.config import OptimConfig, PretrainConfig, save_json
from s2v.train.data import SkeletonDataset, make_loader
from s2v.train.masking import make_mask, token_motion_from_clip, token_motion_from_prior
from s2v.train.model import build_model, count_params
from s2v.train.sampling import TemporalSampler
from s2v.train.targets import (
    ema_decay,
    ema_update,
    feature_targets,
    make_teacher,
    masked_mse,
    motion_targets,
)

# fields a resumed run may change; everything else comes from the checkpoint's config
RUNTIME_KEYS = {
    "run": ("out", "device", "compile", "amp", "log_every", "ckpt_every", "max_steps"),
    "data": ("workers", "in_memory", "block_window"),
}


class TrainingDiverged(S2VError):
    """The loss became NaN or infinite."""


@dataclass
class PretrainResult:
    """What a run ends with: where it stopped, its last logged loss, and the EMA teacher."""

    step: int
    total_steps: int
    loss: float
    out: Path
    teacher: nn.Module  # the EMA teacher encoder (this rank's copy, on the training device)


# --------------------------------------------------------------------------------------------
# optimiser and schedules
# --------------------------------------------------------------------------------------------


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on matrices and conv kernels only; none on biases, 1-D params
    (LayerNorm, LayerScale), position embeddings and the mask token."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim <= 1 or name.endswith(".bias") or ".pos." in name or "mask_token" in name
        (no_decay if skip else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def lr_at(step: int, cfg: OptimConfig, steps_per_epoch: int) -> float:
    """Linear warm-up from 0 over ``warmup_epochs``, then cosine to ``min_lr``, per step."""
    warmup = cfg.warmup_epochs * steps_per_epoch
    total = cfg.epochs * steps_per_epoch
    if step < warmup:
        return cfg.lr * step / warmup
    t = (step - warmup) / max(1, total - warmup)
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from non-negative integers (numpy SeedSequence hashing)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0] >> 1)


# --------------------------------------------------------------------------------------------
# one micro-step
# --------------------------------------------------------------------------------------------


def forward_loss(
    student: nn.Module,
    teacher: nn.Module,
    x: Tensor,
    motion: Tensor,
    cfg: PretrainConfig,
    generator: torch.Generator | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
) -> Tensor:
    """x: (B, M, T, V, C), motion: (B, M, T, V) prior, on the device -> scalar loss.

    Rotate each clip, mask each person's token sequence, regress the teacher's targets (or
    MAMP's motion) at the masked tokens.
    """
    s = cfg.model.segment
    x = random_rotation(x, generator, cfg.data.rotation)
    xs = x.flatten(0, 1)  # (N = B*M, T, V, C): each person is its own sequence
    if cfg.mask.motion == "prior":
        tok_motion = token_motion_from_prior(motion.flatten(0, 1), s)  # (N, T/s, V)
    else:
        tok_motion = token_motion_from_clip(xs, s)
    keep, mask = make_mask(cfg.mask, tok_motion, generator)  # (N, K), (N, L)
    with autocast or contextlib.nullcontext():
        with torch.no_grad():
            if cfg.target.kind == "features":
                _, layers = teacher(xs, return_layers=True)  # unmasked sequence
                target = feature_targets(layers, cfg.target.layers)  # (N, L, D) fp32
            else:
                target = motion_targets(xs, s)  # (N, L, s*C)
        pred = student(xs, keep)  # (N, L, D)
        return masked_mse(pred, target, mask)


# --------------------------------------------------------------------------------------------
# logging
# --------------------------------------------------------------------------------------------


class MetricsLog:
    """metrics.jsonl (one JSON object per logged step) and TensorBoard when installed."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.tb = None
        self.file = None
        if not enabled:
            return
        self.file = open(run_dir / "metrics.jsonl", "a")  # noqa: SIM115 (closed in close())
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"))
        except ImportError:
            self.tb = None

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("step", "epoch") and isinstance(v, (int, float)):
                    self.tb.add_scalar(f"pretrain/{k}", v, row["step"])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


def log(msg: str, info: distributed.DistInfo) -> None:
    if info.is_main:
        tqdm.write(msg, file=sys.stderr)


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


def resume_config(
    saved: dict[str, Any], current: PretrainConfig
) -> tuple[PretrainConfig, list[str]]:
    """The checkpoint's config with the runtime fields (``RUNTIME_KEYS``) of ``current``, and
    the other fields where ``current`` differs (ignored: a resumed run keeps its recipe)."""
    cfg = PretrainConfig.from_dict(saved)
    for section, keys in RUNTIME_KEYS.items():
        for key in keys:
            setattr(getattr(cfg, section), key, getattr(getattr(current, section), key))
    have, want = cfg.to_dict(), current.to_dict()
    ignored = [
        f"{section}.{key}"
        for section, values in want.items()
        if isinstance(values, dict)
        for key, value in values.items()
        if have[section][key] != value
    ]
    return cfg, ignored


def pretrain(
    cfg: PretrainConfig, store: str | Path | Store, resume: bool = False
) -> PretrainResult:
    """Pretrain on a store's ``cfg.data.benchmark`` train split.

    Works single-process or under torchrun (DDP, one process per device).
    """
    info = distributed.setup(cfg.run.device)
    try:
        return _pretrain(cfg, store, resume, info)
    finally:
        distributed.cleanup()


def _pretrain(
    cfg: PretrainConfig, store: str | Path | Store, resume: bool, info: distributed.DistInfo
) -> PretrainResult:
    out = Path(cfg.run.out)
    ckpt = None
    if resume:
        ckpt = load_checkpoint(out, map_location="cpu")
        cfg, ignored = resume_config(ckpt["config"], cfg)
        if ignored:
            log(f"resuming with the checkpoint's config; ignored: {', '.join(ignored)}", info)
    elif (out / LATEST).exists():
        raise S2VError(f"{out}: already holds a run; pass --resume to continue it or pick --out")
    dev = info.device
    o = cfg.optim
    per_rank = o.batch_size // (info.world * o.accum)
    if per_rank < 1 or per_rank * info.world * o.accum != o.batch_size:
        raise S2VError(
            f"batch size {o.batch_size} is not divisible by {info.world} ranks x {o.accum} "
            "accumulation steps"
        )

    # data
    sampler = TemporalSampler(kind=cfg.data.sampler, frames=cfg.model.frames, train=True)
    dataset = SkeletonDataset(
        store, cfg.data.benchmark, "train", sampler=sampler, in_memory=cfg.data.in_memory
    )
    if cfg.data.align_view and dataset.store.attrs.get("align_view") is False:
        # the preset's recipe (NTU-60 xview) aligns views in preprocessing: s2v-prep --align-view
        log(f"warning: the preset expects a view-aligned store; {dataset.store.path} is not", info)

    def epoch_loader(epoch: int) -> torch.utils.data.DataLoader:
        # a fresh loader per epoch: order and worker seeds depend on (seed, epoch) only; a
        # shallow copy of the dataset (arrays shared) with its own main-process seed
        epoch_data = copy.copy(dataset)
        epoch_data.seed = derive_seed(cfg.run.seed, info.rank, epoch)
        loader = make_loader(
            epoch_data,
            per_rank,
            shuffle=True,
            num_workers=cfg.data.workers,
            seed=derive_seed(cfg.run.seed, epoch),
            drop_last=True,
            distributed=info.distributed,
            block_window=cfg.data.block_window,
        )
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        return loader

    micro_per_epoch = len(epoch_loader(0))
    steps_per_epoch = micro_per_epoch // o.accum
    if steps_per_epoch < 1:
        raise S2VError(
            f"{len(dataset)} training samples give no full batch of {per_rank} x {o.accum} "
            f"per rank ({info.world} ranks): lower --batch-size"
        )
    total_steps = o.epochs * steps_per_epoch

    # model, teacher, optimiser: identical initialisation on every rank
    torch.manual_seed(cfg.run.seed)
    raw = build_model(cfg.model, cfg.target.kind).to(dev)
    teacher = make_teacher(raw.encoder)
    optimizer = torch.optim.AdamW(
        param_groups(raw, o.weight_decay),
        lr=o.lr,
        betas=(o.beta1, o.beta2),
        fused=dev.type in ("cuda", "cpu"),  # one fused kernel over all parameters
    )
    step, start_epoch, start_batch = 0, 0, 0
    if ckpt is not None:
        raw.load_state_dict(ckpt["model"])
        teacher.load_state_dict(ckpt["teacher"])
        optimizer.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"])
        step, start_epoch, start_batch = ckpt["step"], ckpt["epoch"], ckpt["batch"]
        del ckpt
    model: nn.Module = raw
    teacher_fwd: nn.Module = teacher
    if cfg.run.compile:
        model = torch.compile(raw)
        teacher_fwd = torch.compile(teacher)
    if info.distributed:
        ids = [dev.index] if dev.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    amp = cfg.run.amp and dev.type == "cuda"  # bf16 autocast on CUDA only

    def autocast() -> contextlib.AbstractContextManager:
        if amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_json(cfg, out / "config.json")
    metrics = MetricsLog(out, info.is_main)
    log(
        f"pretrain {cfg.preset} on {dataset.store.path} {cfg.data.benchmark}/train: "
        f"{len(dataset)} samples, {steps_per_epoch} steps/epoch x {o.epochs} epochs, "
        f"batch {o.batch_size} = {info.world} ranks x {per_rank} x {o.accum} accum, "
        f"encoder {count_params(raw.encoder) / 1e6:.2f} M params, device {dev}"
        + (f", resuming at step {step}" if step else ""),
        info,
    )

    def state(epoch: int, batch: int) -> dict[str, Any]:
        return {
            "model": raw.state_dict(),
            "teacher": teacher.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": {
                "step": step,
                "warmup_steps": o.warmup_epochs * steps_per_epoch,
                "total_steps": total_steps,
                "steps_per_epoch": steps_per_epoch,
            },
            "step": step,
            "epoch": epoch,
            "batch": batch,
            "rng": rng_state(),
            "config": cfg.to_dict(),
        }

    def check_finite(loss: float, epoch: int) -> None:
        if distributed.any_rank(not math.isfinite(loss), dev):
            last = out / LATEST
            keep = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint yet"
            raise TrainingDiverged(
                f"non-finite loss ({loss}) at step {step}, epoch {epoch}: stopped; {keep}"
            )

    gen = torch.Generator(device=dev)
    samples_per_step = per_rank * o.accum * info.world
    loss_sum = torch.zeros((), device=dev)
    n_sum, wait, t_log = 0, 0.0, time.perf_counter()
    last_loss = float("nan")
    stop = False
    model.train()
    try:
        for epoch in range(start_epoch, o.epochs):
            loader = epoch_loader(epoch)
            batches = iter(loader)
            skip = start_batch if epoch == start_epoch else 0
            for _ in range(skip):  # mid-epoch resume: replay the consumed batches' draws
                next(batches)
            if skip:
                t_log = time.perf_counter()
            bar = tqdm(
                total=steps_per_epoch,
                initial=skip // o.accum,
                desc=f"epoch {epoch}",
                leave=False,
                disable=True if not info.is_main else None,
            )
            for _ in range(skip // o.accum, steps_per_epoch):
                # lr for this step
                lr = lr_at(step, o, steps_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                # micro-steps: gradients accumulate; DDP syncs on the last one only
                for micro in range(o.accum):
                    t0 = time.perf_counter()
                    x, motion, _ = next(batches)
                    wait += time.perf_counter() - t0
                    x = x.to(dev, non_blocking=True)
                    motion = motion.to(dev, non_blocking=True)
                    gen.manual_seed(derive_seed(cfg.run.seed, info.rank, step, micro))
                    if info.distributed:
                        model.require_backward_grad_sync = micro == o.accum - 1
                    loss = forward_loss(model, teacher_fwd, x, motion, cfg, gen, autocast())
                    (loss / o.accum).backward()
                    loss_sum += loss.detach()
                    n_sum += 1
                # clip, step, EMA teacher
                grad_norm = (
                    nn.utils.clip_grad_norm_(raw.parameters(), o.clip_grad)
                    if o.clip_grad > 0
                    else None
                )
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                decay = ema_decay(step, total_steps, cfg.target.ema_start, cfg.target.ema_end)
                ema_update(teacher, raw.encoder, decay)
                step += 1
                bar.update(1)
                stop = cfg.run.max_steps > 0 and step >= cfg.run.max_steps
                # log (the loss syncs the device only here)
                if step % cfg.run.log_every == 0 or stop or step == total_steps:
                    last_loss = distributed.all_reduce_mean(loss_sum / n_sum).item()
                    check_finite(last_loss, epoch)
                    dt = time.perf_counter() - t_log
                    n_steps = n_sum // o.accum
                    row = {
                        "step": step,
                        "epoch": epoch,
                        "loss": last_loss,
                        "lr": lr,
                        "ema_decay": decay,
                        "grad_norm": None if grad_norm is None else float(grad_norm),
                        "samples_per_s": n_steps * samples_per_step / dt,
                        "data_wait": wait / dt,
                    }
                    metrics.write(row)
                    bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{lr:.2e}")
                    loss_sum.zero_()
                    n_sum, wait, t_log = 0, 0.0, time.perf_counter()
                if stop:
                    break
            bar.close()
            del batches, loader  # shuts this epoch's workers down
            # checkpoint (rank 0); never after a non-finite loss
            if n_sum:
                check_finite(distributed.all_reduce_mean(loss_sum / n_sum).item(), epoch)
            if info.is_main:
                if step == (epoch + 1) * steps_per_epoch:  # the epoch is complete
                    st = state(epoch + 1, 0)
                    if (epoch + 1) % cfg.run.ckpt_every == 0 or epoch + 1 == o.epochs:
                        save_checkpoint(st, out / epoch_name(epoch + 1))
                else:  # stopped mid-epoch: record how many micro-batches were consumed
                    st = state(epoch, (step - epoch * steps_per_epoch) * o.accum)
                save_checkpoint(st, out / LATEST)
            distributed.barrier()
            if stop:
                break
    finally:
        metrics.close()
    log(f"stopped at step {step} of {total_steps}, loss {last_loss:.4f}; run dir {out}", info)
    return PretrainResult(step, total_steps, last_loss, out, teacher)
