"""Downstream protocols: linear probe, fine-tuning, semi-supervised, transfer, scratch, test,
report and the demo (docs/method.md §7)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import s2v.train.downstream as downstream
from s2v.store import write_store
from s2v.train.checkpoint import LATEST, load_encoder
from s2v.train.classifier import LinearHead, MlpHead, build_classifier
from s2v.train.cli import main
from s2v.train.config import MODEL_SIZES, resolve, resolve_eval
from s2v.train.data import SkeletonDataset
from s2v.train.distributed import DistInfo
from s2v.train.evaluate import accuracy_metrics, predict
from s2v.train.model import Encoder, build_encoder
from s2v.train.pretrain import pretrain
from s2v.train.sampling import TemporalSampler
from s2v.train.subset import stratified_subset

TINY = dict(MODEL_SIZES["tiny"], frames=12, segment=3)


@pytest.fixture(autouse=True)
def one_thread():
    # tiny models: intra-op threads only add contention on small CI machines
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def build_store(path: Path, n: int = 40, classes: int = 4, seed: int = 0):
    """n clips of smooth random motion, labels i % classes; xsub test: samples 0-3, 16-19, ..."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        t = int(rng.integers(15, 40))
        walk = np.cumsum(rng.normal(0, 0.01, size=(t, 2, 25, 3)), axis=0)
        clip = (rng.normal(0, 0.3, size=(1, 2, 25, 3)) + walk).astype(np.float32)
        if i % 3:
            clip[:, 1] = 0.0
        clips.append(clip)
    labels = np.arange(n) % classes
    idx = np.arange(n)
    test = (idx // 4) % 4 == 0
    splits = {"xsub": {"train": idx[~test], "test": idx[test]}}
    samples = {"name": [f"S001C001P{i + 1:03d}R001A{labels[i] + 1:03d}" for i in range(n)],
               "label": labels.astype(np.int16)}  # fmt: skip
    attrs = {"dataset": f"test{classes}", "label_names": [f"class {k}" for k in range(classes)]}
    return write_store(path, clips, samples, splits, attrs, "zarr")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("store") / "s.zarr")


@pytest.fixture(scope="module")
def pretrained(store, tmp_path_factory):
    """A tiny pretraining run (2 epochs) on ``store``: its run directory."""
    out = tmp_path_factory.mktemp("runs") / "pretrain"
    cfg = resolve(
        "s2v",
        store.dataset,
        "xsub",
        overrides={
            "model": TINY,
            "mask": {"tube": 2},
            "target": {"ema_start": 0.9},
            "optim": {"epochs": 2, "warmup_epochs": 1, "batch_size": 10},
            "data": {"workers": 0},
            "run": {"out": str(out), "device": "cpu"},
        },
    )
    pretrain(cfg, store.path)
    return out


def cli(*args: str) -> str:
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.output


SMALL_RUN = ("--epochs", "2", "--workers", "0", "--device", "cpu", "--test-clips", "2")


def args(protocol: str, source, store, run: Path, batch: int, *more: str) -> list:
    """A protocol command line on the tiny test setup: 2 epochs, 2 test clips, CPU."""
    return [protocol, source, store.path, "-b", "xsub", "--out", run, "--batch-size", batch,
            *SMALL_RUN, *more]  # fmt: skip


def check_run(run: Path, protocol: str, test_samples: int, epochs: int = 2) -> dict:
    """results.json, one table row in CSV and Markdown, a confusion matrix over the test
    split, and a weights_only classifier checkpoint."""
    res = json.loads((run / "results.json").read_text())
    assert res["protocol"] == protocol and res["epochs"] == epochs
    assert res["test_samples"] == test_samples and 0 <= res["last"]["top1"] <= 100
    assert 1 <= res["best"]["epoch"] <= epochs and res["best"]["top1"] >= 0
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert len(rows) == 1 and rows[0]["protocol"].startswith(protocol)
    assert float(rows[0]["top1_last"]) == pytest.approx(res["last"]["top1"], abs=0.01)
    md = (run / "results.md").read_text()
    assert "top-1 % (last epoch)" in md and "best epoch" in md and len(md.splitlines()) == 3
    conf = list(csv.reader(open(run / "confusion.csv")))
    assert sum(int(v) for row in conf[1:] for v in row[1:]) == test_samples
    assert (run / "confusion.png").stat().st_size > 0
    ckpt = torch.load(run / "classifier-last.pt", weights_only=True)
    assert ckpt["kind"] == "classifier" and ckpt["epoch"] == epochs
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == list(range(1, epochs + 1))
    return res


# --------------------------------------------------------------------------------------------
# linear probe
# --------------------------------------------------------------------------------------------


def test_linear_probe_end_to_end_with_batch_features(store, pretrained, tmp_path):
    run = tmp_path / "lin"
    cli(*args("linear", pretrained, store, run, 8))
    res = check_run(run, "linear", test_samples=12)
    assert res["checkpoint"] == str(pretrained / LATEST) and res["weights"] == "teacher"
    assert res["last"]["clips"] == 2 and res["best"]["clips"] == 1


def test_linear_probe_encoder_is_frozen_in_eval_mode_and_unchanged(store, pretrained, tmp_path):
    teacher, pcfg = load_encoder(pretrained)
    modes = []
    hook = nn.modules.module.register_module_forward_pre_hook(
        lambda m, _: modes.append(m.training) if isinstance(m, Encoder) else None
    )
    try:
        cfg = resolve_eval(
            "linear",
            store.dataset,
            "xsub",
            pcfg,
            overrides={
                "checkpoint": str(pretrained),
                "optim": {"epochs": 2, "batch_size": 6},
                "data": {"workers": 0, "test_clips": 1},
                "run": {"out": str(tmp_path / "lin"), "device": "cpu"},
            },
        )
        res = downstream.run_protocol(cfg, store.path)
    finally:
        hook.remove()
    assert len(modes) > 10 and not any(modes)  # every forward, training steps included
    enc = res.model.encoder
    assert not enc.training and all(not p.requires_grad for p in enc.parameters())
    for k, v in teacher.state_dict().items():
        assert torch.equal(enc.state_dict()[k], v), k
    # the head did train
    assert res.model.head.bn.running_var.ne(1).any()


def test_linear_probe_with_cached_features(store, pretrained, tmp_path):
    run = tmp_path / "cached"
    out = cli(*args("linear", pretrained, store, run, 8, "--cache-features"))
    assert "features cached" in out
    check_run(run, "linear", test_samples=12)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["cache_features"] is True


def test_linear_probe_head_is_bn_without_affine_and_linear_with_small_init():
    head = LinearHead(256, 60)
    assert isinstance(head.bn, nn.BatchNorm1d) and not head.bn.affine
    assert head.fc.weight.shape == (60, 256) and head.fc.weight.std() < 0.015
    z = torch.randn(2 * 3, 4 * 25, 256)  # B=3, M=2, L=100 tokens
    pooled = z.view(3, 2 * 100, 256).mean(1)
    head.eval()
    assert torch.allclose(head(z, 2, 25), head.classify(pooled), atol=1e-6)


def test_finetune_head_pools_time_concatenates_joints_and_averages_persons():
    torch.manual_seed(0)
    head = MlpHead(dim=8, joints=25, classes=5, hidden=16, dropout=0.0).eval()
    z = torch.randn(3 * 2, 4 * 25, 8)  # (B*M, T'*V, D)
    f = z.view(3, 2, 4, 25, 8).mean(2).reshape(3, 2, 25 * 8).mean(1)
    want = head.fc2(head.act(head.bn(head.fc1(f))))
    assert head.fc1.in_features == 25 * 8
    assert torch.allclose(head(z, 2, 25), want, atol=1e-6)


# --------------------------------------------------------------------------------------------
# fine-tuning, transfer, scratch
# --------------------------------------------------------------------------------------------


def test_finetune_end_to_end_then_test_command(store, pretrained, tmp_path):
    run = tmp_path / "ft"
    cli(*args("finetune", pretrained, store, run, 6, "--warmup-epochs", "1"))
    res = check_run(run, "finetune", test_samples=12)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["drop_path"] == 0.3 and cfg["head"]["kind"] == "mlp"
    assert cfg["optim"]["layer_decay"] == 0.8 and cfg["optim"]["label_smoothing"] == 0.1
    # test: k clips, the same number as the protocol's own final test
    cli("test", run, store.path, "--clips", "2", "--workers", "0", "--device", "cpu")
    t = json.loads((run / "test-xsub" / "results.json").read_text())
    assert t["protocol"] == "test" and t["test_samples"] == 12 and t["clips"] == 2
    assert t["top1"] == pytest.approx(res["last"]["top1"])
    conf = list(csv.reader(open(run / "test-xsub" / "confusion.csv")))
    assert sum(int(v) for row in conf[1:] for v in row[1:]) == 12
    per_class = list(csv.DictReader(open(run / "test-xsub" / "per_class.csv")))
    assert [int(r["samples"]) for r in per_class] == [3, 3, 3, 3]
    assert (run / "test-xsub" / "results.md").is_file()


def test_transfer_to_another_store_gets_a_new_head(pretrained, tmp_path):
    other = build_store(tmp_path / "other.zarr", n=24, classes=6, seed=3)
    run = tmp_path / "transfer"
    cli(*args("finetune", pretrained, other, run, 6))
    res = check_run(run, "finetune", test_samples=8)
    assert res["classes"] == 6 and res["transfer"] is True
    assert res["source_dataset"] == "test4" and res["dataset"] == "test6"
    ckpt = torch.load(run / "classifier-last.pt", weights_only=True)
    assert ckpt["model"]["head.fc2.weight"].shape[0] == 6


@pytest.mark.parametrize("protocol", ["linear", "finetune"])
def test_scratch_baseline_uses_a_random_encoder(store, tmp_path, protocol):
    run = tmp_path / protocol
    cli(
        *args(
            protocol, "scratch", store, run, 6, "--model-size", "tiny", "--set", "model.frames=12"
        )
    )
    res = check_run(run, protocol, test_samples=12)
    assert res["checkpoint"] == "scratch" and res["weights"] is None
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert rows[0]["protocol"] == f"{protocol} (scratch)"
    # a random encoder from run.seed: the same seed gives the same weights
    cfg = downstream.EvalConfig.from_dict(json.loads((run / "config.json").read_text()))
    a, b = downstream.make_encoder(cfg), downstream.make_encoder(cfg)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


# --------------------------------------------------------------------------------------------
# semi-supervised
# --------------------------------------------------------------------------------------------


def test_semi_subset_is_seeded_class_stratified_and_depends_on_the_seed_only():
    labels = np.repeat(np.arange(10), 50)[np.random.default_rng(0).permutation(500)]
    a = stratified_subset(labels, 0.1, seed=3)
    assert np.array_equal(a, stratified_subset(labels, 0.1, seed=3))
    assert not np.array_equal(a, stratified_subset(labels, 0.1, seed=4))
    assert np.array_equal(np.bincount(labels[a], minlength=10), np.full(10, 5))
    assert np.all(np.diff(a) > 0)
    # 1 %: every class keeps at least one sample
    tiny = stratified_subset(labels, 0.01, seed=3)
    assert np.array_equal(np.bincount(labels[tiny], minlength=10), np.ones(10))


def test_semi_records_its_subset_and_repeats_give_mean_and_std(store, pretrained, tmp_path):
    run = tmp_path / "semi"
    cli(
        *args(
            "semi", pretrained, store, run, 4, "--fraction", "0.5", "--seed", "7", "--repeats", "2"
        )
    )
    train_idx = store.split("xsub", "train")
    subsets = []
    for seed in (7, 8):
        one = run / f"seed-{seed}"
        res = check_run(one, "semi", test_samples=12)
        sub = json.loads((one / "subset.json").read_text())
        assert sub["seed"] == seed and sub["fraction"] == 0.5
        pos = stratified_subset(store.labels[train_idx], 0.5, seed)
        assert sub["indices"] == train_idx[pos].tolist()
        assert res["train_samples"] == len(sub["indices"]) == 16  # 7 of each class: round(3.5)
        subsets.append(sub["indices"])
    assert subsets[0] != subsets[1]
    summary = json.loads((run / "results.json").read_text())
    assert summary["seeds"] == [7, 8] and len(summary["top1_last"]) == 2
    assert summary["top1_last_mean"] == pytest.approx(np.mean(summary["top1_last"]))
    assert summary["top1_last_std"] == pytest.approx(np.std(summary["top1_last"], ddof=1))
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert rows[0]["protocol"] == "semi (mean of 2)" and rows[0]["top1_std"] != ""


# --------------------------------------------------------------------------------------------
# optimiser and test protocol
# --------------------------------------------------------------------------------------------


def test_layer_wise_decay_scales_lr_from_head_down_to_embeddings():
    cfg = resolve_eval("finetune", "ntu60", "xsub", overrides={"model": dict(TINY, depth=3)})
    model = build_classifier(build_encoder(cfg.model), cfg.head, cfg.model, 7)
    groups = downstream.layer_decay_groups(model, 0.05, 0.8)
    scale = {n: g["lr_scale"] for g in groups for n in g["names"]}
    wd = {n: g["weight_decay"] for g in groups for n in g["names"]}
    assert set(scale) == {n for n, _ in model.named_parameters()}
    assert scale["encoder.embed.weight"] == pytest.approx(0.8**4)  # depth 3: deepest
    assert scale["encoder.pos.temporal"] == pytest.approx(0.8**4)
    for i in range(3):
        assert scale[f"encoder.blocks.{i}.attn.qkv.weight"] == pytest.approx(0.8 ** (3 - i))
    assert scale["encoder.norm.weight"] == pytest.approx(0.8)  # with the last block
    assert scale["head.fc1.weight"] == scale["head.fc2.bias"] == 1.0
    assert wd["encoder.blocks.0.attn.qkv.weight"] == 0.05 and wd["head.fc1.weight"] == 0.05
    assert wd["encoder.blocks.0.attn.qkv.bias"] == wd["encoder.pos.spatial"] == 0.0
    assert wd["encoder.blocks.0.norm1.weight"] == wd["head.bn.weight"] == 0.0
    # the optimiser's lr of each group is the schedule's lr times its scale
    opt = downstream.make_optimizer(groups, cfg.optim, torch.device("cpu"))
    for group in opt.param_groups:
        group["lr"] = 3e-4 * group["lr_scale"]
    lrs = {n: g["lr"] for g in opt.param_groups for n in g["names"]}
    assert lrs["encoder.blocks.2.mlp.fc1.weight"] == pytest.approx(3e-4 * 0.8)
    assert lrs["head.fc2.weight"] == pytest.approx(3e-4)


def test_k_clip_test_averages_the_clips_logits(store):
    torch.manual_seed(0)
    cfg = resolve_eval("finetune", "x", "xsub", overrides={"model": TINY, "head": {"dropout": 0}})
    model = build_classifier(build_encoder(cfg.model), cfg.head, cfg.model, 4).eval()
    k = 3
    ds = SkeletonDataset(
        store, "xsub", "test", sampler=TemporalSampler(frames=12, train=False, clips=k)
    )
    logits, labels = predict(model, ds, 4, 0, DistInfo())
    assert logits.shape == (12, 4) and np.array_equal(labels, store.labels[ds.indices])
    with torch.no_grad():
        for i in range(len(ds)):
            x, _, _ = ds[i]  # (K, M, T, V, C)
            per_clip = torch.stack([model(x[j : j + 1])[0] for j in range(k)])
            assert torch.allclose(torch.from_numpy(logits[i]), per_clip.mean(0), atol=1e-5)
            assert not torch.allclose(per_clip[0], per_clip[1])  # the clips do differ


def test_accuracy_metrics_top1_top5_per_class_and_confusion():
    logits = np.array(
        [[3, 2, 1, 0, 0, 0], [0, 3, 2, 1, 0, 0], [0, 0, 0, 0, 1, 9], [9, -1, 0, 0, 0, 1]], float
    )
    labels = np.array([0, 2, 5, 1])
    m = accuracy_metrics(logits, labels, 6)
    assert m["top1"] == 50.0 and m["top5"] == 75.0
    assert m["confusion"].sum() == 4 and m["confusion"][2, 1] == 1 and m["confusion"][1, 0] == 1
    assert m["per_class"][0] == 100.0 and m["per_class"][2] == 0.0 and np.isnan(m["per_class"][3])


# --------------------------------------------------------------------------------------------
# CLI, report, demo
# --------------------------------------------------------------------------------------------


def test_cli_help_and_one_line_errors(store, pretrained, tmp_path):
    for cmd in ("linear", "finetune", "semi", "test", "report", "demo"):
        assert "Usage:" in cli(cmd, "--help")
    runner = CliRunner()
    cases = [
        (["linear", tmp_path / "none", store.path, "-b", "xsub"], "no such checkpoint"),
        (["linear", pretrained, store.path, "-b", "xview"], "unknown benchmark 'xview'"),
        (["linear", pretrained, store.path, "-b", "xsub", "--model-size", "tiny"], "--model-size"),
        (["finetune", pretrained, store.path, "-b", "xsub", "--set", "optim.lr=x"], "optim.lr"),
        (["test", pretrained, store.path], "no such classifier checkpoint"),
        (["test", pretrained / LATEST, store.path], "not a classifier checkpoint"),
        (["semi", pretrained, store.path, "-b", "xsub", "--fraction", "0"], "fraction"),
        (["report", tmp_path / "none"], "no such run directory"),
    ]
    for line, msg in cases:
        r = runner.invoke(main, [str(a) for a in line])
        assert r.exit_code != 0 and msg in r.output, (line, r.output)
        assert len(r.output.strip().splitlines()) == 1 or r.exit_code == 2, r.output
    # a finished run is not replaced without --overwrite
    run = tmp_path / "once"
    once = args("linear", pretrained, store, run, 8)
    cli(*once)
    r = runner.invoke(main, [str(a) for a in once])
    assert r.exit_code == 1 and "--overwrite" in r.output
    cli(*once, "--overwrite")
    assert len(list(csv.DictReader(open(run / "results.csv")))) == 2  # the row is appended


def test_print_config_takes_the_checkpoints_model_and_the_dataset_presets(store, pretrained):
    out = cli("linear", pretrained, store.path, "-b", "xsub", "--print-config")
    cfg = json.loads(out)
    assert cfg["model"]["dim"] == 32 and cfg["model"]["frames"] == 12  # the checkpoint's
    assert cfg["optim"]["lr"] == 0.1 and cfg["optim"]["batch_size"] == 256
    cfg = resolve_eval("linear", "pku2", "xsub")
    assert cfg.optim.lr == 0.01  # PKU-II linear probe
    cfg = resolve_eval("semi", "ntu120", "xset")
    assert cfg.optim.lr == 1e-4 and cfg.head.kind == "mlp"  # NTU-120 xset fine-tuning


def test_report_writes_curves_and_the_results_table(store, pretrained, tmp_path):
    run = pretrained.parent / "report-lin"
    cli(*args("linear", pretrained, store, run, 8))
    out = cli("report", pretrained.parent, "--out", tmp_path / "rep")
    assert "report.md" in out
    pngs = sorted(p.name for p in (tmp_path / "rep").glob("*.png"))
    assert "curves-pretrain.png" in pngs and "curves-report-lin.png" in pngs
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| linear |" in md and "curves-pretrain.png" in md


def test_demo_smoke(tmp_path):
    from s2v.train.demo import DemoConfig, run_demo

    cfg = DemoConfig(out=tmp_path / "demo", minutes=0.02, classes=4, per_class=8,
                     model_size="tiny", batch_size=4, probe_epochs=2, test_clips=2,
                     device="cpu")  # fmt: skip
    got = run_demo(cfg)
    assert 0 <= got["pretrained_top1"] <= 100 and 0 <= got["random_top1"] <= 100
    assert (tmp_path / "demo" / "report" / "report.md").is_file()
    for name in ("linear-pretrained", "linear-random"):
        assert (tmp_path / "demo" / name / "results.json").is_file()
    with pytest.raises(Exception, match="--overwrite"):
        run_demo(cfg)


DDP_SCRIPT = """
import json, os, sys
import s2v.train.downstream as d
from s2v.train.cli import main

orig = d.stratified_subset
def recording(labels, fraction, seed):
    pos = orig(labels, fraction, seed)
    with open(os.path.join(sys.argv[-1], f"subset-rank{os.environ['RANK']}.json"), "w") as fh:
        json.dump(pos.tolist(), fh)
    return pos
d.stratified_subset = recording
main(sys.argv[1:-1], standalone_mode=False)
"""


@pytest.mark.slow
def test_semi_under_torchrun_draws_the_same_subset_on_every_rank(store, pretrained, tmp_path):
    script = tmp_path / "ddp_semi.py"
    script.write_text(DDP_SCRIPT)
    run = tmp_path / "semi"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(script), "semi", str(pretrained), str(store.path), "-b", "xsub", "--out", str(run),
           "--fraction", "0.5", "--batch-size", "4", "--epochs", "1", "--workers", "0",
           "--device", "cpu", "--test-clips", "2", str(tmp_path)]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = json.loads((tmp_path / "subset-rank0.json").read_text())
    b = json.loads((tmp_path / "subset-rank1.json").read_text())
    assert a == b and len(a) == 16
    res = json.loads((run / "results.json").read_text())
    assert res["test_samples"] == 12  # both ranks' test shares gathered
