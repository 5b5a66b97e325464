"""Teacher, targets, optimiser and schedule, checkpoints, the loop (resume, NaN), CLI and DDP."""

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

import s2v.train.pretrain as pretrain_mod
from s2v.train.checkpoint import LATEST, load_encoder
from s2v.train.cli import main
from s2v.train.config import MODEL_SIZES, ConfigError, OptimConfig, resolve
from s2v.train.model import build_model
from s2v.train.pretrain import TrainingDiverged, lr_at, param_groups, pretrain, resume_config
from s2v.train.targets import (
    ema_decay,
    ema_update,
    feature_targets,
    make_teacher,
    masked_mse,
    motion_targets,
)


@pytest.fixture(autouse=True)
def one_thread():
    # tiny models: intra-op threads only add contention on small CI machines
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_cfg(out, **sections):
    """A tiny model on 12-frame clips (4 x 25 tokens), 9-sample xsub train split."""
    over = {
        "model": dict(MODEL_SIZES["tiny"], frames=12, segment=3),
        "mask": {"tube": 2},
        "optim": {"epochs": 3, "warmup_epochs": 1, "batch_size": 4},
        "data": {"workers": 0},
        "run": {"out": str(out), "log_every": 1, "ckpt_every": 2},
    }
    for k, v in sections.items():
        over[k].update(v)
    return resolve("s2v", "test", "xsub", overrides=over)


def read_metrics(run_dir):
    return [
        json.loads(line)
        for line in (Path(run_dir) / "metrics.jsonl").read_text().split("\n")
        if line
    ]


# --------------------------------------------------------------------------------------------
# teacher and targets
# --------------------------------------------------------------------------------------------


def test_teacher_is_a_frozen_copy_in_eval_mode():
    student = build_model(tiny_cfg("x").model).encoder
    teacher = make_teacher(student)
    assert teacher is not student and not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    for a, b in zip(teacher.parameters(), student.parameters(), strict=True):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()


def test_ema_update_is_d_teacher_plus_1_minus_d_student_on_params_and_float_buffers():
    torch.manual_seed(0)
    student = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    teacher = make_teacher(student)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(torch.randn_like(p))
        student[1].running_mean.fill_(2.0)
    before = [t.clone() for t in teacher.state_dict().values()]
    ema_update(teacher, student, 0.9)
    for (name, t), t0, s in zip(
        teacher.state_dict().items(), before, student.state_dict().values(), strict=True
    ):
        if t.is_floating_point():
            assert torch.allclose(t, 0.9 * t0 + 0.1 * s, atol=1e-7), name
        else:  # num_batches_tracked: not averaged
            assert torch.equal(t, t0), name


def test_ema_decay_is_linear_from_start_to_end_over_the_run():
    assert ema_decay(0, 1000) == pytest.approx(0.9999)
    assert ema_decay(500, 1000) == pytest.approx(0.99995)
    assert ema_decay(1000, 1000) == 1.0
    assert ema_decay(5000, 1000) == 1.0
    assert ema_decay(250, 1000, 0.99, 0.999) == pytest.approx(0.99225)


def reference_targets(layers, eps=1e-5):
    """data2vec 2.0 / the reference code: per-layer instance_norm in a loop, average, layer_norm."""
    ys = [F.instance_norm(h.float().transpose(1, 2), eps=eps).transpose(1, 2) for h in layers]
    y = sum(ys) / len(ys)
    return F.layer_norm(y, y.shape[-1:])


def test_feature_targets_match_the_per_layer_reference():
    torch.manual_seed(1)
    layers = [torch.randn(3, 20, 16) * (i + 1) + i for i in range(4)]
    got = feature_targets(layers)
    assert got.dtype == torch.float32 and got.shape == (3, 20, 16)
    assert torch.allclose(got, reference_targets(layers), atol=1e-5)
    assert torch.allclose(
        feature_targets(layers, top_k=2), reference_targets(layers[-2:]), atol=1e-5
    )
    # bf16 block outputs are normalised in fp32
    lb = [h.bfloat16() for h in layers]
    assert feature_targets(lb).dtype == torch.float32


def test_motion_targets_are_per_token_normalised_frame_differences():
    torch.manual_seed(2)
    x = torch.randn(2, 6, 5, 3)  # N, T, V, C; s = 3 -> 2 x 5 tokens of 9 values
    got = motion_targets(x, 3)
    assert got.shape == (2, 10, 9)
    d = torch.zeros_like(x)
    d[:, :-1] = x[:, 1:] - x[:, :-1]
    for n in range(2):
        for t in range(2):
            for v in range(5):
                vals = d[n, 3 * t : 3 * t + 3, v].reshape(-1)  # (s*C,) frame-major
                want = (vals - vals.mean()) / torch.sqrt(vals.var() + 1e-6)
                assert torch.allclose(got[n, t * 5 + v], want, atol=1e-5)


def test_masked_mse_averages_over_masked_tokens_and_channels_only():
    pred = torch.zeros(2, 4, 3)
    target = torch.ones(2, 4, 3)
    target[:, 0] = 100.0  # visible token: ignored
    mask = torch.tensor([[False, True, True, True], [False, True, False, False]])
    assert masked_mse(pred, target, mask).item() == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# optimiser and schedule
# --------------------------------------------------------------------------------------------


def test_no_weight_decay_on_biases_norms_layerscale_pos_embeddings_and_mask_token():
    model = build_model(tiny_cfg("x").model)
    decay, no_decay = param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    nd = {names[id(p)] for p in no_decay["params"]}
    d = {names[id(p)] for p in decay["params"]}
    assert {
        "encoder.pos.spatial",
        "encoder.pos.temporal",
        "decoder.pos.spatial",
        "decoder.mask_token",
        "encoder.blocks.0.ls1.gamma",
        "encoder.norm.weight",
        "encoder.blocks.0.attn.qkv.bias",
        "encoder.embed.bias",
    } <= nd
    assert {
        "encoder.embed.weight",
        "encoder.blocks.0.attn.qkv.weight",
        "encoder.blocks.1.mlp.fc2.weight",
        "decoder.head.weight",
    } <= d
    assert len(d) + len(nd) == len(names)
    assert all(names[id(p)].endswith("weight") for p in decay["params"])


def test_lr_warms_up_linearly_then_follows_a_cosine_to_min_lr():
    cfg = OptimConfig(epochs=10, warmup_epochs=2, lr=1e-3, min_lr=1e-5)
    spe = 5  # 10 warm-up steps, 50 in all
    assert lr_at(0, cfg, spe) == 0.0
    assert lr_at(5, cfg, spe) == pytest.approx(5e-4)
    assert lr_at(10, cfg, spe) == pytest.approx(1e-3)
    assert lr_at(30, cfg, spe) == pytest.approx((1e-3 + 1e-5) / 2)
    assert lr_at(50, cfg, spe) == pytest.approx(1e-5)
    steps = [lr_at(s, cfg, spe) for s in range(10, 51)]
    assert all(a >= b for a, b in zip(steps, steps[1:], strict=False))


def test_config_presets_and_overrides():
    cfg = resolve("s2v", "ntu120", "xset", sets=["optim.lr=0.002", "run.compile=true"])
    assert cfg.mask.beta == 0.2 and cfg.model.frames == 90 and cfg.optim.lr == 0.002
    assert cfg.run.compile is True
    assert resolve("s2v", "ntu60", "xview").data.align_view is True
    mamp = resolve("mamp", "ntu120", "xsub")
    assert (mamp.model.frames, mamp.model.segment, mamp.mask.mode, mamp.mask.tau) == (
        120,
        4,
        "motion",
        0.75,
    )
    assert mamp.target.kind == "motion" and mamp.data.sampler == "crop_resize"
    assert resolve("s2v", "pku2", "xsub").mask.beta == 0.1
    for bad in (["mask.nope=1"], ["optim.epochs=abc"], ["mask.mode=zigzag"]):
        with pytest.raises(ConfigError):
            resolve("s2v", "ntu60", "xsub", sets=bad)
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve("nope")


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------


def test_checkpoint_loads_with_weights_only_and_gives_the_teacher_encoder(make_store, tmp_path):
    store = make_store()
    cfg = tiny_cfg(tmp_path / "run", optim={"epochs": 2})
    res = pretrain(cfg, store.path)
    assert res.step == res.total_steps == 4
    run = tmp_path / "run"
    assert (run / "checkpoint-ep0002.pt").is_file() and (run / LATEST).is_file()
    assert json.loads((run / "config.json").read_text())["model"]["dim"] == 32
    ckpt = torch.load(run / LATEST, weights_only=True)
    assert {"model", "teacher", "optimizer", "scheduler", "step", "epoch", "rng", "config"} <= set(
        ckpt
    )
    assert ckpt["step"] == 4 and ckpt["epoch"] == 2 and ckpt["scheduler"]["total_steps"] == 4
    enc, cfg2 = load_encoder(run)
    assert cfg2.model == cfg.model
    for k, v in enc.state_dict().items():
        assert torch.equal(v, ckpt["teacher"][k])
        assert torch.equal(v, res.teacher.state_dict()[k].cpu())  # the live teacher: any device
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert {"loss", "lr", "ema_decay", "samples_per_s", "data_wait", "epoch"} <= set(rows[0])
    assert all(math.isfinite(r["loss"]) for r in rows)


def test_resume_mid_epoch_replays_the_same_losses(make_store, tmp_path):
    store = make_store()
    over = {"optim": {"accum": 2}}  # 2 micro-batches of 2 per step, 2 steps per epoch
    pretrain(tiny_cfg(tmp_path / "straight", **over), store.path)
    # stop after 3 steps (mid-epoch 1), then resume to the end
    stop = tiny_cfg(tmp_path / "resumed", **over)
    stop.run.max_steps = 3
    pretrain(stop, store.path)
    assert torch.load(tmp_path / "resumed" / LATEST, weights_only=True)["batch"] == 2
    cont = tiny_cfg(tmp_path / "resumed", **over)
    res = pretrain(cont, store.path, resume=True)
    assert res.step == 6
    a = [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "straight")]
    b = [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "resumed")]
    assert len(a) == 6 and a == b
    ta = torch.load(tmp_path / "straight" / LATEST, weights_only=True)["teacher"]
    tb = torch.load(tmp_path / "resumed" / LATEST, weights_only=True)["teacher"]
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


def test_resume_keeps_the_checkpoint_recipe_and_takes_the_runtime_fields():
    saved = tiny_cfg("first").to_dict()
    cfg, ignored = resume_config(saved, tiny_cfg("second", optim={"lr": 0.5}, data={"workers": 3}))
    assert cfg.optim.lr == 1e-3 and ignored == ["optim.lr"]
    assert cfg.data.workers == 3 and cfg.run.out == "second"


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    make_store, tmp_path, monkeypatch
):
    store = make_store()
    real = pretrain_mod.forward_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] >= 4 else loss  # step 4: epoch 1, 2nd step

    monkeypatch.setattr(pretrain_mod, "forward_loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="non-finite loss .* step 4"):
        pretrain(tiny_cfg(run), store.path)
    ckpt = torch.load(run / LATEST, weights_only=True)
    assert ckpt["step"] == 2 and ckpt["epoch"] == 1  # written after epoch 0, not after the NaN
    assert all(torch.isfinite(v).all() for v in ckpt["teacher"].values())


def test_cli_pretrains_checkpoints_resumes_and_continues(make_store, tmp_path):
    store = make_store(fmt="h5")
    run = tmp_path / "run"
    args = [
        "pretrain",
        str(store.path),
        "-b",
        "xsub",
        "--model-size",
        "tiny",
        "--out",
        str(run),
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--workers",
        "1",
        "--device",
        "cpu",
        "--set",
        "model.frames=12",
        "--set",
        "mask.tube=2",
        "--set",
        "run.log_every=1",
    ]
    r = CliRunner().invoke(main, args + ["--max-steps", "3"])
    assert r.exit_code == 0, r.output
    assert torch.load(run / LATEST, weights_only=True)["step"] == 3
    # the run dir is taken: a second fresh start is refused, --resume continues
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1 and "--resume" in r.output
    r = CliRunner().invoke(main, args + ["--resume"])
    assert r.exit_code == 0, r.output
    assert torch.load(run / "checkpoint-ep0002.pt", weights_only=True)["step"] == 4
    # with a loader worker too, the resumed run replays the straight run's losses
    straight = tmp_path / "straight"
    args[args.index(str(run))] = str(straight)
    assert CliRunner().invoke(main, args).exit_code == 0
    got = [(row["step"], row["loss"]) for row in read_metrics(run)]
    assert [s for s, _ in got] == [1, 2, 3, 4]
    assert got == [(row["step"], row["loss"]) for row in read_metrics(straight)]


@pytest.mark.parametrize("dataset", ["ntu60", "ntu120"])
def test_mamp_preset_trains_with_motion_targets_and_motion_masking(make_store, tmp_path, dataset):
    store = make_store()
    cfg = resolve(
        "mamp",
        dataset,
        "xsub",
        overrides={
            "model": dict(MODEL_SIZES["tiny"], frames=16, segment=4),
            "optim": {"epochs": 1, "warmup_epochs": 1, "batch_size": 4},
            "data": {"workers": 0},
            "run": {"out": str(tmp_path / "run"), "log_every": 1},
        },
    )
    res = pretrain(cfg, store.path)
    assert res.step == 2 and math.isfinite(res.loss)
    ckpt = torch.load(tmp_path / "run" / LATEST, weights_only=True)
    assert ckpt["model"]["decoder.head.weight"].shape == (12, 32)  # s * 3 motion values
    # MAMP keeps no EMA: decay 0 makes the teacher the student's encoder
    for k, v in ckpt["teacher"].items():
        assert torch.equal(v, ckpt["model"][f"encoder.{k}"])


def test_cli_bad_input_is_one_line_and_non_zero(make_store, tmp_path):
    store = make_store()
    runner = CliRunner()
    r = runner.invoke(main, ["pretrain", str(tmp_path / "missing.zarr"), "-b", "xsub"])
    assert r.exit_code == 1 and "no such store" in r.output and len(r.output.splitlines()) == 1
    r = runner.invoke(main, ["pretrain", str(store.path), "-b", "xset"])
    assert r.exit_code == 1 and "unknown benchmark 'xset'" in r.output
    r = runner.invoke(main, ["pretrain", str(store.path), "-b", "xsub", "--set", "optim.lr=x"])
    assert r.exit_code == 1 and "optim.lr" in r.output
    r = runner.invoke(
        main, ["pretrain", str(store.path), "-b", "xsub", "--out", str(tmp_path / "r"), "--resume"]
    )
    assert r.exit_code == 1 and "no such checkpoint" in r.output
    r = runner.invoke(main, ["pretrain", "--help"])
    assert r.exit_code == 0 and "--benchmark" in r.output


DDP_SCRIPT = """
import os, sys, torch
from s2v.train.cli import main
res = main(sys.argv[1:], standalone_mode=False)
torch.save(res.teacher.state_dict(), os.path.join(str(res.out), f"teacher-rank{os.environ['RANK']}.pt"))
"""


@pytest.mark.slow
def test_ddp_two_cpu_processes_keep_identical_teachers(make_store, tmp_path):
    store = make_store(n=20)  # 15 training samples: 3 steps of 2 ranks x 2 per epoch
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(script),
        "pretrain",
        str(store.path),
        "-b",
        "xsub",
        "--model-size",
        "tiny",
        "--out",
        str(run),
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--set",
        "model.frames=12",
        "--set",
        "mask.tube=2",
        "--set",
        "run.log_every=1",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # own session: on a timeout the launcher and both ranks are killed together
    p = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        output, _ = p.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise
    assert p.returncode == 0, output[-5000:]
    t0 = torch.load(run / "teacher-rank0.pt", weights_only=True)
    t1 = torch.load(run / "teacher-rank1.pt", weights_only=True)
    assert all(torch.equal(t0[k], t1[k]) for k in t0)
    ckpt = torch.load(run / LATEST, weights_only=True)  # written by rank 0 only
    assert ckpt["step"] == 6 and all(torch.equal(ckpt["teacher"][k], t0[k]) for k in t0)
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == list(range(1, 7))  # one metrics writer
