"""``s2v-train demo``: the whole pipeline on a fresh machine in a few minutes of CPU.

1. a synthetic NTU-format corpus (``s2v-prep synth``, or ``--raw`` files) converted into a
   store (``s2v-prep ntu60``): run as subprocesses, since the trainer never imports the
   conversion package (docs/design.md §1);
2. Skeleton2vec pretraining of a tiny encoder on the xsub training split, its schedule sized
   to the time budget by timing a few steps first;
3. the linear probe (cached features, 100 epochs) of the pretrained EMA teacher and of a
   randomly initialised encoder of the same architecture, tested with k clips;
4. a comparison table and ``report/report.md`` (curves, results).

Demo-sized settings, and why (measured on 2 cores; numbers in the README). The synthetic
classes differ in motion, and even a random encoder with a linear probe separates many of them
(its features are close to a random projection of the mean pose), so the corpus has many
classes (40) for the comparison to mean something. What pretraining adds grows with the number
of steps, so the encoder is the tiny one (dim 32, 2 blocks: ~0.1 s per step of 32 clips) and
clips are 30 frames (10 temporal tokens); a few thousand steps fit in the budget. No
bystanders (``--two-person 0``): features are averaged over both persons, and an idle second
person in a fifth of the clips cost both probes about half their accuracy at this size, and
the gap between them. A run of a
few thousand steps needs a faster EMA teacher than the paper's 800 epochs (start 0.9999): the
teacher is what the probe reads, and at 0.9999 it would hardly move from its initialisation.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from s2v.errors import S2VError
from s2v.store import Store
from s2v.train.config import MODEL_SIZES, EvalConfig, PretrainConfig, resolve, resolve_eval
from s2v.train.model import build_model, count_params
from s2v.train.pretrain import derive_seed, forward_loss, param_groups
from s2v.train.targets import make_teacher

STEP_OVERHEAD = 1.15  # loop step / timed step, measured on 2 cores (0.114 s vs 0.10-0.13 s)


@dataclass
class DemoConfig:
    out: Path = Path("demo_out")
    raw: Path | None = None  # NTU .skeleton files; None: synthesise
    minutes: float = 7.0  # pretraining budget
    classes: int = 40  # synthetic corpus
    per_class: int = 30
    two_person: float = 0.0  # share of clips with an idle bystander (see the module docstring)
    model_size: str = "tiny"
    frames: int = 30  # T: 10 tokens of 3 frames
    batch_size: int = 32
    lr: float = 1e-3
    ema_start: float = 0.99  # see the module docstring
    ema_end: float = 0.999
    mask: str = "motion-tube"
    probe_epochs: int = 100
    test_clips: int = 10
    seed: int = 0
    workers: int = 0  # in-memory data: the main process is fastest on 2 cores
    device: str = "auto"
    overwrite: bool = False


def prep(*args: str) -> None:
    """Run ``s2v-prep ARGS`` with this interpreter; a failure is an S2VError."""
    code = "import sys; from s2v.preprocess.cli import main; sys.exit(main(prog_name='s2v-prep'))"
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise S2VError(f"s2v-prep {args[0]} failed: {tail[-1] if tail else proc.returncode}")
    for line in proc.stdout.strip().splitlines()[-3:]:
        print(f"  {line}", file=sys.stderr)


def make_store(cfg: DemoConfig) -> Path:
    """The corpus converted into a store (reused when already complete)."""
    out = cfg.out
    if cfg.raw is not None:
        raw, store = cfg.raw, out / f"{cfg.raw.name}.zarr"
    else:
        name = f"synth-c{cfg.classes}x{cfg.per_class}-s{cfg.seed}-b{cfg.two_person:g}"
        raw, store = out / name, out / f"{name}.zarr"
        if not (raw.is_dir() and len(list(raw.glob("*.skeleton"))) >= cfg.classes * cfg.per_class):
            prep("synth", str(raw), "--classes", str(cfg.classes), "--per-class",
                 str(cfg.per_class), "--seed", str(cfg.seed), "--two-person",
                 str(cfg.two_person), "--faults", "-q")  # fmt: skip
    dataset = "ntu120" if cfg.classes > 60 else "ntu60"
    # one conversion worker: a corpus this small converts in seconds either way
    prep(dataset, str(raw), "-o", str(store), "--workers", "1", "-q")
    return store


def pretrain_config(cfg: DemoConfig, dataset: str, epochs: int) -> PretrainConfig:
    model = dict(MODEL_SIZES[cfg.model_size], frames=cfg.frames)
    return resolve(
        "s2v",
        dataset,
        "xsub",
        overrides={
            "model": model,
            "mask": {"mode": cfg.mask},
            "target": {"ema_start": cfg.ema_start, "ema_end": cfg.ema_end},
            "optim": {
                "epochs": epochs,
                "warmup_epochs": max(1, epochs // 10),
                "batch_size": cfg.batch_size,
                "lr": cfg.lr,
            },
            "data": {"workers": cfg.workers, "in_memory": True},
            "run": {
                "out": str(cfg.out / "pretrain"),
                "seed": cfg.seed,
                "device": cfg.device,
                "log_every": 5,
                "ckpt_every": 10**6,
            },
        },
    )


def seconds_per_step(pcfg: PretrainConfig, device: torch.device, steps: int = 3) -> float:
    """Wall time of one optimiser step of ``pcfg``'s model on a random batch (after one
    warm-up step): the pretraining schedule is sized with it."""
    torch.manual_seed(0)
    model = build_model(pcfg.model, pcfg.target.kind).to(device)
    teacher = make_teacher(model.encoder)
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-4)
    B, T = pcfg.optim.batch_size, pcfg.model.frames
    x = torch.randn(B, 2, T, 25, 3, device=device) * 0.3
    motion = torch.rand(B, 2, T, 25, device=device)
    gen = torch.Generator(device=device)
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        gen.manual_seed(derive_seed(0, i))
        forward_loss(model, teacher, x, motion, pcfg, gen).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times[1:])[len(times[1:]) // 2]


def probe_config(
    cfg: DemoConfig, dataset: str, pcfg: PretrainConfig, ckpt: str, out: str
) -> EvalConfig:
    return resolve_eval(
        "linear",
        dataset,
        "xsub",
        pcfg,
        overrides={
            "checkpoint": ckpt,
            "optim": {"epochs": cfg.probe_epochs},
            "data": {
                "cache_features": True,
                "in_memory": True,
                "workers": cfg.workers,
                "test_clips": cfg.test_clips,
            },
            "run": {"out": out, "seed": cfg.seed, "device": cfg.device, "log_every": 25},
        },
    )


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run the demo; prints the comparison and returns its numbers."""
    from s2v.train.distributed import pick_device
    from s2v.train.downstream import run_protocol
    from s2v.train.pretrain import pretrain
    from s2v.train.report import report

    t_all = time.perf_counter()
    cfg.out.mkdir(parents=True, exist_ok=True)
    runs = [cfg.out / n for n in ("pretrain", "linear-pretrained", "linear-random", "report")]
    taken = [r for r in runs if r.exists()]
    if taken and not cfg.overwrite:
        raise S2VError(f"{taken[0]} exists: pass --overwrite to replace the demo's runs")
    for r in taken:
        shutil.rmtree(r)
    times: dict[str, float] = {}

    say(f"1/4 corpus and store in {cfg.out}")
    t0 = time.perf_counter()
    store_path = make_store(cfg)
    st = Store(store_path)
    dataset = st.dataset
    n_train, n_test = len(st.split("xsub", "train")), len(st.split("xsub", "test"))
    times["corpus + store"] = time.perf_counter() - t0

    dev = pick_device(cfg.device)
    probe = pretrain_config(cfg, dataset, 1)
    step_s = seconds_per_step(probe, dev)
    steps_per_epoch = n_train // cfg.batch_size
    if steps_per_epoch < 1:
        raise S2VError(f"{n_train} training samples: fewer than one batch of {cfg.batch_size}")
    # the timed step leaves out data loading, rotation and logging: ~10-15 % more in the loop
    step_s *= STEP_OVERHEAD
    epochs = max(1, int(cfg.minutes * 60 / (step_s * steps_per_epoch)))
    pcfg = pretrain_config(cfg, dataset, epochs)
    say(
        f"2/4 pretrain Skeleton2vec ({cfg.model_size}, {count_params(build_model(pcfg.model).encoder) / 1e6:.2f} M "
        f"encoder params, {cfg.frames} frames) on {n_train} clips: {epochs} epochs x "
        f"{steps_per_epoch} steps at ~{step_s:.2f} s/step ({cfg.minutes:g} min budget)"
    )
    t0 = time.perf_counter()
    res = pretrain(pcfg, store_path)
    times["pretrain"] = time.perf_counter() - t0

    say("3/4 linear probes: the pretrained EMA teacher, then a random encoder")
    results = {}
    for name, ckpt in (("pretrained", str(res.out)), ("random", "scratch")):
        t0 = time.perf_counter()
        ecfg = probe_config(cfg, dataset, pcfg, ckpt, str(cfg.out / f"linear-{name}"))
        results[name] = run_protocol(ecfg, store_path, overwrite=True)
        times[f"linear probe, {name}"] = time.perf_counter() - t0

    say("4/4 report")
    rep = report(cfg.out)
    times["total"] = time.perf_counter() - t_all
    classes = int(len(set(st.labels.tolist())))
    lines = [
        "",
        f"Skeleton2vec demo: {classes} classes, {n_train} training / {n_test} test clips "
        f"(xsub), {dataset} store {store_path}",
        f"pretraining: {epochs} epochs, {res.step} steps, final loss {res.loss:.4f}, "
        f"{times['pretrain']:.0f} s",
        "",
        f"| linear probe (xsub test, {cfg.test_clips} clips) | top-1 % | top-5 % | best epoch top-1 % |",
        "|---|---|---|---|",
    ]
    for name, label in (("pretrained", "Skeleton2vec, pretrained"), ("random", "random encoder")):
        r = results[name]
        lines.append(f"| {label} | {r.top1:.1f} | {r.top5:.1f} | {r.best_top1:.1f} |")
    lines.append(f"| chance | {100 / classes:.1f} | {500 / classes:.1f} | |")
    lines += ["", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in times.items()]
    lines += ["", f"report: {rep}"]
    print("\n".join(lines))
    return {
        "pretrained_top1": results["pretrained"].top1,
        "random_top1": results["random"].top1,
        "epochs": epochs,
        "steps": res.step,
        "times": times,
        "report": rep,
    }


def say(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)
