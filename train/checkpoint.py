"""Checkpoints: plain dicts of tensors and Python scalars, loadable with ``weights_only=True``.

A pretraining checkpoint holds::

    model       student state_dict (encoder + decoder)
    teacher     EMA teacher encoder state_dict (the weights downstream tasks use)
    optimizer   AdamW state_dict
    scheduler   {"step", "warmup_steps", "total_steps", "steps_per_epoch"} (lr = f(step))
    step        optimiser steps done;  epoch, batch: where the data stream resumes
    rng         torch / numpy / python / per-device generator states
    config      the resolved PretrainConfig as a plain dict

Files are written to a temporary name and renamed, so a crash never leaves a truncated
``checkpoint-latest.pt``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from s2v.errors import S2VError
from s2v.train.config import PretrainConfig
from s2v.train.model import Encoder, build_encoder

LATEST = "checkpoint-latest.pt"


class CheckpointError(S2VError):
    """A checkpoint is missing or is not a skeleton2vec pretraining checkpoint."""


def epoch_name(epoch: int) -> str:
    """File name of the checkpoint kept after ``epoch`` epochs."""
    return f"checkpoint-ep{epoch:04d}.pt"


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor (in nested dicts, lists and tuples) copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """torch.save to ``path`` atomically (temporary file in the same folder, then rename).

    Tensors are saved from the CPU, so a checkpoint written on a GPU loads with a plain
    ``torch.load(path, weights_only=True)`` on a machine without one (an optimiser's state
    goes back to its parameters' device in ``load_state_dict``)."""
    state = to_cpu(state)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def find_checkpoint(run_dir_or_ckpt: str | Path) -> Path:
    """A checkpoint file, or a run directory's ``checkpoint-latest.pt``."""
    p = Path(run_dir_or_ckpt)
    if p.is_dir():
        p = p / LATEST
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint")
    return p


def load_checkpoint(run_dir_or_ckpt: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)``."""
    path = find_checkpoint(run_dir_or_ckpt)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle, zip and weights_only errors come in many types
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc})") from None
    if not isinstance(ckpt, dict) or "config" not in ckpt or "teacher" not in ckpt:
        raise CheckpointError(f"{path}: not a skeleton2vec pretraining checkpoint")
    return ckpt


def load_encoder(
    run_dir_or_ckpt: str | Path, map_location: Any = "cpu", weights: str = "teacher"
) -> tuple[Encoder, PretrainConfig]:
    """The pretrained encoder and its run's config.

    ``weights="teacher"`` (default) loads the EMA teacher, the weights every downstream
    protocol uses (docs/method.md §7); ``"student"`` loads the student's encoder.
    """
    ckpt = load_checkpoint(run_dir_or_ckpt, map_location)
    cfg = PretrainConfig.from_dict(ckpt["config"])
    encoder = build_encoder(cfg.model)
    if weights == "teacher":
        state = ckpt["teacher"]
    elif weights == "student":
        prefix = "encoder."
        state = {k[len(prefix) :]: v for k, v in ckpt["model"].items() if k.startswith(prefix)}
    else:
        raise ValueError(f"weights: expected teacher or student, got {weights!r}")
    encoder.load_state_dict(state)
    return encoder, cfg


# --------------------------------------------------------------------------------------------
# random number generator states as weights_only-safe values
# --------------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """torch, numpy, python and accelerator generator states (tensors, ints, lists)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": version, "state": list(internal), "gauss": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (device states only where that device exists)."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    keys = n["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda_states)
