"""One pretraining step of the full-size model: time per phase and peak memory, ours vs the
reference implementation's way of doing the same step.

    python benchmarks/train_step.py                 # CPU (and CUDA when available), batch 16
    python benchmarks/train_step.py --device cuda --batch 128 --steps 20

Phases: rotation + masking, teacher forward on the unmasked clip + targets, student encoder on
the visible tokens, decoder + loss + the whole backward, AdamW step (with clipping), EMA update.

"reference-style" does the step as Ruizhuo-Xu/SKeleton2vec-code does (models/skeleton2vec.py,
models/ema.py, models/transformer.py): attention as explicit einsum + softmax, the teacher a
deep copy of the whole auto-encoder (decoder included) updated by a Python loop over its
state_dict followed by load_state_dict, targets by per-layer instance_norm calls in a loop. Same
weights, data, masks and optimiser. Each variant runs in its own process, so the CPU peak
memory (max RSS) is per variant.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import time
import types

import torch
import torch.nn.functional as F

from s2v.train.augment import random_rotation
from s2v.train.config import PretrainConfig
from s2v.train.masking import make_mask, token_motion_from_prior
from s2v.train.model import Attention, build_model, count_params
from s2v.train.pretrain import param_groups
from s2v.train.targets import ema_update, feature_targets, make_teacher, masked_mse

PHASES = (
    "rotate + mask",
    "teacher fwd + targets",
    "student encoder",
    "decoder + loss + backward",
    "AdamW step",
    "EMA update",
)


# --------------------------------------------------------------------------------------------
# the reference implementation's way
# --------------------------------------------------------------------------------------------


def reference_attention(self: Attention, x: torch.Tensor) -> torch.Tensor:
    """models/transformer.py MultiHeadAttention: einsum energy, softmax, einsum."""
    N, L, D = x.shape
    q, k, v = self.qkv(x).view(N, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
    energy = torch.einsum("bhqd, bhkd -> bhqk", q, k)
    att = F.softmax(energy * (D // self.heads) ** -0.5, dim=-1)
    out = torch.einsum("bhal, bhlv -> bhav ", att, v)
    return self.proj(out.transpose(1, 2).reshape(N, L, D))


@torch.no_grad()
def reference_ema(teacher: torch.nn.Module, student: torch.nn.Module, decay: float) -> None:
    """models/ema.py EMA.step: a Python loop over the state_dict, then load_state_dict."""
    ema_state = {}
    ema_params = teacher.state_dict()
    for key, param in student.state_dict().items():
        ema_param = ema_params[key].float()
        ema_param.mul_(decay)
        ema_param.add_(param.to(dtype=ema_param.dtype), alpha=1 - decay)
        ema_state[key] = ema_param
    teacher.load_state_dict(ema_state, strict=False)


@torch.no_grad()
def reference_targets(layers: list[torch.Tensor]) -> torch.Tensor:
    """models/skeleton2vec.py Skeleton2Vec2.forward, norm_target_per_layer='instance_norm'."""
    y = [tl.transpose(1, 2) for tl in layers]  # rearrange 'b n c -> b c n'
    y = [F.instance_norm(tl.float()) for tl in y]
    y = [tl.transpose(1, 2) for tl in y]
    y = sum(y) / len(y)
    return F.layer_norm(y.float(), y.shape[-1:])


# --------------------------------------------------------------------------------------------
# one variant, in this process
# --------------------------------------------------------------------------------------------


def run_variant(variant: str, device: str, batch: int, warmup: int, steps: int) -> dict:
    dev = torch.device(device)
    cfg = PretrainConfig()
    torch.manual_seed(0)
    model = build_model(cfg.model).to(dev)
    reference = variant == "reference"
    if reference:
        for m in model.modules():
            if isinstance(m, Attention):
                m.forward = types.MethodType(reference_attention, m)
        teacher = copy.deepcopy(model).requires_grad_(False)  # the whole auto-encoder
    else:
        teacher = make_teacher(model.encoder)
    o = cfg.optim
    # ours: one fused AdamW kernel; the reference: torch's default AdamW implementation
    fused = not reference and dev.type in ("cuda", "cpu")
    opt = torch.optim.AdamW(
        param_groups(model, o.weight_decay), lr=1e-4, betas=(o.beta1, o.beta2), fused=fused
    )
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 2, cfg.model.frames, 25, 3, generator=g).cumsum(2).mul(0.01).to(dev)
    motion = torch.rand(batch, 2, cfg.model.frames, 25, generator=g).to(dev)
    gen = torch.Generator(device=dev)
    cuda = dev.type == "cuda"

    def autocast():
        return (
            torch.autocast("cuda", torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)
        )

    def step(i: int, times: dict[str, float]) -> None:
        def mark(name: str, t0: float) -> float:
            if cuda:
                torch.cuda.synchronize(dev)
            t = time.perf_counter()
            times[name] = times.get(name, 0.0) + t - t0
            return t

        t = time.perf_counter()
        gen.manual_seed(i)
        xs = random_rotation(x, gen, cfg.data.rotation).flatten(0, 1)  # (N, T, V, C)
        tok = token_motion_from_prior(motion.flatten(0, 1), cfg.model.segment)
        keep, mask = make_mask(cfg.mask, tok, gen)
        t = mark(PHASES[0], t)
        with autocast(), torch.no_grad():
            if reference:
                _, layers = teacher.encoder(xs, return_layers=True)
                target = reference_targets(layers)
            else:
                _, layers = teacher(xs, return_layers=True)
                target = feature_targets(layers)
        del layers
        t = mark(PHASES[1], t)
        with autocast():
            z, _ = model.encoder(xs, keep)
        t = mark(PHASES[2], t)
        with autocast():
            loss = masked_mse(model.decoder(z, keep), target, mask)
        loss.backward()
        t = mark(PHASES[3], t)
        torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip_grad)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t = mark(PHASES[4], t)
        if reference:
            reference_ema(teacher, model, 0.9999)
        else:
            ema_update(teacher, model.encoder, 0.9999)
        mark(PHASES[5], t)

    for i in range(warmup):
        step(i, {})
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    times: dict[str, float] = {}
    for i in range(steps):
        step(warmup + i, times)
    out = {k: v / steps for k, v in times.items()}
    if cuda:
        peak = torch.cuda.max_memory_allocated(dev) / 2**20
        kind = "CUDA max allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
        kind = "max RSS"
    return {
        "times": out,
        "peak_mib": peak,
        "peak_kind": kind,
        "encoder_params": count_params(model.encoder),
        "decoder_params": count_params(model.decoder),
        "threads": torch.get_num_threads(),
    }


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------


def measure(variant: str, device: str, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--variant",
        variant,
        "--device",
        device,
        "--batch",
        str(args.batch),
        "--warmup",
        str(args.warmup),
        "--steps",
        str(args.steps),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        sys.exit(f"{variant} on {device} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def print_table(device: str, ours: dict, ref: dict, args: argparse.Namespace) -> None:
    to = sum(ours["times"].values())
    tr = sum(ref["times"].values())
    print(
        f"\n{device}: batch {args.batch} clips x 2 persons, 90 frames (750 tokens), "
        f"encoder {ours['encoder_params'] / 1e6:.2f} M + decoder "
        f"{ours['decoder_params'] / 1e6:.2f} M params, {ours['threads']} threads, "
        f"mean of {args.steps} steps after {args.warmup} warm-up"
    )
    print(
        f"{'phase':<28}{'ours ms':>10}{'share':>8}{'reference-style ms':>21}{'share':>8}"
        f"{'ratio':>8}"
    )
    for ph in PHASES:
        a, b = ours["times"][ph], ref["times"][ph]
        print(f"{ph:<28}{a * 1e3:>10.1f}{a / to:>8.1%}{b * 1e3:>21.1f}{b / tr:>8.1%}{b / a:>8.2f}")
    print(f"{'total step':<28}{to * 1e3:>10.1f}{'':>8}{tr * 1e3:>21.1f}{'':>8}{tr / to:>8.2f}")
    print(
        f"{'peak memory MiB (' + ours['peak_kind'] + ')':<36}{ours['peak_mib']:>10.0f}"
        f"{ref['peak_mib']:>21.0f}"
    )
    print(
        f"samples/s: ours {args.batch / to:.1f}, reference-style {args.batch / tr:.1f}; "
        f"reference / ours step time = {tr / to:.2f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--device", default=None, help="cpu or cuda (default: cpu, then cuda when available)"
    )
    ap.add_argument("--batch", type=int, default=16, help="clips per step (2 persons each)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--steps", type=int, default=2, help="timed steps")
    ap.add_argument("--variant", choices=("ours", "reference"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:  # child process: one variant, JSON on the last line
        res = run_variant(args.variant, args.device or "cpu", args.batch, args.warmup, args.steps)
        print(json.dumps(res))
        return
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs (timings include any contention)")
    devices = (
        [args.device]
        if args.device
        else (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    )
    for device in devices:
        ours = measure("ours", device, args)
        ref = measure("reference", device, args)
        print_table(device, ours, ref, args)


if __name__ == "__main__":
    main()
