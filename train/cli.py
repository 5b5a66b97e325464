"""s2v-train: the command line (click).

    s2v-train pretrain STORE --benchmark xsub [--preset s2v|mamp] [--config FILE] [--out DIR] ...
    torchrun --nproc-per-node 4 -m s2v.train pretrain STORE --benchmark xsub ...
    s2v-train linear|finetune RUN_OR_CKPT STORE -b xsub ...   (RUN_OR_CKPT 'scratch': baseline)
    s2v-train semi RUN_OR_CKPT STORE -b xsub --fraction 0.01 [--repeats R]
    s2v-train test RUN STORE [--clips 10]
    s2v-train report RUN_DIR
    s2v-train demo [--out DIR] [--minutes M]

Every subcommand plugs into the ``main`` group and reuses ``store_argument``,
``common_options``, ``open_store`` and ``cli_errors``; the protocols take the pretrained (EMA
teacher) encoder through ``s2v.train.checkpoint.load_encoder``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

import s2v
from s2v.errors import S2VError
from s2v.store import Store

MASK_MODES = ("motion-tube", "tube", "random", "motion")


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn the toolkit's errors into a one-line message and exit status 1."""
    try:
        yield
    except S2VError as exc:
        raise click.ClickException(str(exc)) from None


def open_store(path: str | Path, benchmark: str | None = None) -> Store:
    """Open a store; with ``benchmark``, check the store holds that benchmark's splits."""
    store = s2v.open(path)
    if benchmark is not None and benchmark not in store.benchmarks:
        have = ", ".join(store.benchmarks) or "none"
        raise S2VError(f"{path}: unknown benchmark '{benchmark}' (this store has: {have})")
    return store


store_argument = click.argument("store", type=click.Path(path_type=Path))


def common_options(f: Callable) -> Callable:
    """Options every training command shares: device, workers, seed, in-memory data."""
    options = [
        click.option("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps."),
        click.option("--workers", type=int, default=None, help="DataLoader workers per rank."),
        click.option("--seed", type=int, default=None, help="Random seed (data, masks, init)."),
        click.option(
            "--in-memory/--streaming",
            default=None,
            help="Load the split's clips into RAM once / stream them from the store.",
        ),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def common_overrides(
    device: str | None, workers: int | None, seed: int | None, in_memory: bool | None
) -> dict[str, Any]:
    """The ``common_options`` values as a nested config override dict (None: not given)."""
    out: dict[str, Any] = {"run": {}, "data": {}}
    if device is not None:
        out["run"]["device"] = device
    if seed is not None:
        out["run"]["seed"] = seed
    if workers is not None:
        out["data"]["workers"] = workers
    if in_memory is not None:
        out["data"]["in_memory"] = in_memory
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(s2v.__version__, prog_name="s2v-train")
def main() -> None:
    """Skeleton2vec self-supervised pretraining and evaluation on skeleton stores."""


@main.command()
@store_argument
@click.option("--benchmark", "-b", required=True, help="Split to train on: xsub, xview, xset.")
@click.option(
    "--preset",
    default="s2v",
    show_default=True,
    help="s2v (Skeleton2vec) or mamp (MAMP baseline), or a JSON preset file.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="JSON file of config overrides, applied after the preset.",
)
@click.option(
    "--out",
    "-o",
    default=None,
    help="Run directory (default runs/<preset>-<dataset>-<benchmark>).",
)
@click.option("--epochs", type=int, default=None, help="Epochs of the schedule.")
@click.option("--batch-size", type=int, default=None, help="Global batch over ranks and accum.")
@click.option("--lr", type=float, default=None, help="Peak learning rate.")
@click.option("--accum", type=int, default=None, help="Gradient accumulation micro-steps.")
@click.option("--masking", type=click.Choice(MASK_MODES), default=None, help="Masking mode.")
@click.option(
    "--target", type=click.Choice(("features", "motion")), default=None, help="Regression target."
)
@click.option(
    "--model-size",
    type=click.Choice(("base", "small", "tiny")),
    default=None,
    help="Named model size (base = the paper's; tiny for smoke tests).",
)
@click.option(
    "--compile/--no-compile", default=None, help="torch.compile the student and the teacher."
)
@click.option("--max-steps", type=int, default=None, help="Stop (and checkpoint) after N steps.")
@click.option(
    "--resume", is_flag=True, help="Continue the run in --out from its latest checkpoint."
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override any config field, e.g. --set mask.beta=0.2 (repeatable).",
)
@click.option("--print-config", is_flag=True, help="Print the resolved config as JSON and exit.")
@common_options
def pretrain(
    store: Path,
    benchmark: str,
    preset: str,
    config_file: Path | None,
    out: str | None,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    accum: int | None,
    masking: str | None,
    target: str | None,
    model_size: str | None,
    compile: bool | None,
    max_steps: int | None,
    resume: bool,
    sets: tuple[str, ...],
    print_config: bool,
    device: str | None,
    workers: int | None,
    seed: int | None,
    in_memory: bool | None,
) -> Any:
    """Pretrain an encoder on STORE's BENCHMARK train split (torchrun for several devices)."""
    from s2v.train.config import MODEL_SIZES, resolve

    with cli_errors():
        st = open_store(store, benchmark)
        dataset = st.dataset
        o = common_overrides(device, workers, seed, in_memory)
        o.update(model={}, mask={}, target={}, optim={})
        if model_size is not None:
            o["model"].update(MODEL_SIZES[model_size])
        named = {
            ("optim", "epochs"): epochs,
            ("optim", "batch_size"): batch_size,
            ("optim", "lr"): lr,
            ("optim", "accum"): accum,
            ("mask", "mode"): masking,
            ("target", "kind"): target,
            ("run", "compile"): compile,
            ("run", "max_steps"): max_steps,
        }
        for (section, key), value in named.items():
            if value is not None:
                o[section][key] = value
        o["run"]["out"] = out or str(Path("runs") / f"{Path(preset).stem}-{dataset}-{benchmark}")
        cfg = resolve(preset, dataset, benchmark, config_file, o, sets)
        if print_config:
            click.echo(json.dumps(cfg.to_dict(), indent=2))
            return
        from s2v.train.pretrain import pretrain as run_pretrain

        # returned for callers of main(..., standalone_mode=False), e.g. the DDP test
        return run_pretrain(cfg, st.path, resume=resume)


# --------------------------------------------------------------------------------------------
# downstream protocols: linear, finetune, semi, test, report, demo
# --------------------------------------------------------------------------------------------

run_or_ckpt_argument = click.argument("run_or_ckpt", metavar="RUN_OR_CKPT")


def protocol_options(f: Callable) -> Callable:
    """Options of linear, finetune and semi (on top of ``common_options``)."""
    options = [
        click.option(
            "--benchmark", "-b", required=True, help="Split to train and test on: xsub, xview..."
        ),
        click.option(
            "--out",
            "-o",
            default=None,
            help="Run directory (default: <pretraining run>/<protocol>-<dataset>-<benchmark>, "
            "or runs/scratch-... without a checkpoint).",
        ),
        click.option("--epochs", type=int, default=None, help="Epochs (100)."),
        click.option("--batch-size", type=int, default=None, help="Global batch over ranks."),
        click.option("--lr", type=float, default=None, help="Peak learning rate."),
        click.option(
            "--weights",
            type=click.Choice(("teacher", "student")),
            default=None,
            help="Which encoder of the checkpoint: the EMA teacher (default) or the student.",
        ),
        click.option(
            "--preset",
            default="s2v",
            show_default=True,
            help="Without a checkpoint: the pretraining preset whose architecture and "
            "temporal sampling the random encoder takes (s2v or mamp).",
        ),
        click.option(
            "--model-size",
            type=click.Choice(("base", "small", "tiny")),
            default=None,
            help="Without a checkpoint: named model size (a checkpoint fixes its own).",
        ),
        click.option(
            "--test-clips", type=int, default=None, help="Clips averaged in the final test (10)."
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(path_type=Path),
            default=None,
            help="JSON file of config overrides, applied after the protocol preset.",
        ),
        click.option(
            "--set",
            "sets",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override any config field, e.g. --set optim.layer_decay=0.75 (repeatable).",
        ),
        click.option("--max-steps", type=int, default=None, help="Stop after N steps (smoke)."),
        click.option("--overwrite", is_flag=True, help="Replace the results in --out."),
        click.option("--print-config", is_flag=True, help="Print the resolved config and exit."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return common_options(f)


def eval_config(
    protocol: str, run_or_ckpt: str, st: Store, benchmark: str, opts: dict[str, Any]
) -> Any:
    """Resolve a protocol's config: the checkpoint's (or a preset's) model and sampling, the
    protocol presets, then the command line."""
    from s2v.train.checkpoint import find_checkpoint, load_checkpoint
    from s2v.train.config import MODEL_SIZES, SCRATCH, PretrainConfig, resolve, resolve_eval

    dataset = st.dataset
    scratch = run_or_ckpt.lower() in SCRATCH
    if scratch:
        size = MODEL_SIZES[opts["model_size"]] if opts["model_size"] else {}
        pretrained = resolve(opts["preset"], dataset, benchmark, overrides={"model": size})
        pretrained.dataset = ""  # nothing was pretrained
        default_out = Path("runs") / f"scratch-{protocol}-{dataset}-{benchmark}"
        checkpoint = "scratch"
    else:
        if opts["model_size"]:
            raise S2VError("--model-size applies without a checkpoint (a checkpoint fixes it)")
        path = find_checkpoint(run_or_ckpt)
        pretrained = PretrainConfig.from_dict(load_checkpoint(path)["config"])
        default_out = path.parent / f"{protocol}-{dataset}-{benchmark}"
        checkpoint = str(path)
    if protocol == "semi":
        default_out = default_out.with_name(
            default_out.name.replace("semi", f"semi{opts['fraction']:g}", 1)
        )
    o = common_overrides(opts["device"], opts["workers"], opts["seed"], opts["in_memory"])
    o.update(optim={})
    o["checkpoint"] = checkpoint
    named = {
        ("optim", "epochs"): opts["epochs"],
        ("optim", "batch_size"): opts["batch_size"],
        ("optim", "lr"): opts["lr"],
        ("optim", "warmup_epochs"): opts.get("warmup_epochs"),
        ("optim", "layer_decay"): opts.get("layer_decay"),
        ("data", "test_clips"): opts["test_clips"],
        ("data", "cache_features"): opts.get("cache_features"),
        ("data", "fraction"): opts.get("fraction"),
        ("run", "max_steps"): opts["max_steps"],
    }
    for (section, key), value in named.items():
        if value is not None:
            o[section][key] = value
    if opts["weights"] is not None:
        o["weights"] = opts["weights"]
    o["run"]["out"] = opts["out"] or str(default_out)
    return resolve_eval(
        protocol, dataset, benchmark, pretrained, opts["config_file"], o, opts["sets"]
    )


def run_protocol_command(protocol: str, run_or_ckpt: str, store: Path, opts: dict[str, Any]) -> Any:
    """Shared body of linear / finetune / semi."""
    with cli_errors():
        st = open_store(store, opts["benchmark"])
        cfg = eval_config(protocol, run_or_ckpt, st, opts["benchmark"], opts)
        if opts["print_config"]:
            click.echo(json.dumps(cfg.to_dict(), indent=2))
            return None
        from s2v.train.downstream import run_protocol, run_semi

        if protocol == "semi":
            return run_semi(cfg, st.path, opts["repeats"], opts["overwrite"])
        return run_protocol(cfg, st.path, opts["overwrite"])


@main.command()
@run_or_ckpt_argument
@store_argument
@click.option(
    "--cache-features/--no-cache-features",
    default=None,
    help="Encode the splits once without augmentation and train the head on the features "
    "(fast); default: encode every batch with the training augmentation.",
)
@protocol_options
def linear(run_or_ckpt: str, store: Path, **opts: Any) -> Any:
    """Linear probe: a BN + Linear head on the frozen encoder of RUN_OR_CKPT (a pretraining run
    or checkpoint; 'scratch' for a random encoder), trained and tested on STORE."""
    return run_protocol_command("linear", run_or_ckpt, store, opts)


def finetune_options(f: Callable) -> Callable:
    f = click.option("--layer-decay", type=float, default=None, help="Layer-wise lr decay (0.8).")(
        f
    )
    return click.option("--warmup-epochs", type=int, default=None, help="Warm-up epochs (5).")(f)


@main.command()
@run_or_ckpt_argument
@store_argument
@finetune_options
@protocol_options
def finetune(run_or_ckpt: str, store: Path, **opts: Any) -> Any:
    """Fine-tune the encoder of RUN_OR_CKPT ('scratch': from a random initialisation) with an
    MLP head on STORE; a checkpoint from another dataset is transfer learning."""
    return run_protocol_command("finetune", run_or_ckpt, store, opts)


@main.command()
@run_or_ckpt_argument
@store_argument
@click.option(
    "--fraction",
    type=click.FloatRange(0, 1, min_open=True),
    required=True,
    help="Labelled share of the training split (0.01 or 0.1), class-stratified.",
)
@click.option(
    "--repeats",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Runs with seeds SEED, SEED+1, ...: reports the mean and std.",
)
@finetune_options
@protocol_options
def semi(run_or_ckpt: str, store: Path, **opts: Any) -> Any:
    """Semi-supervised fine-tuning on a seeded, class-stratified subset of the training split
    (the same on every rank; the indices are saved in the run's subset.json)."""
    return run_protocol_command("semi", run_or_ckpt, store, opts)


@main.command()
@click.argument("run_or_ckpt", metavar="RUN_OR_CKPT")
@store_argument
@click.option("--benchmark", "-b", default=None, help="Test split (default: the run's).")
@click.option("--clips", type=click.IntRange(1), default=10, show_default=True,
              help="Uniformly sampled clips per sample; their logits are averaged.")  # fmt: skip
@click.option(
    "--which",
    type=click.Choice(("last", "best")),
    default="last",
    show_default=True,
    help="The run's last-epoch or best-epoch classifier.",
)
@click.option("--out", "-o", default=None, help="Output folder (default <run>/test-<benchmark>).")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Samples per batch.")
@common_options
def test(
    run_or_ckpt: str,
    store: Path,
    benchmark: str | None,
    clips: int,
    which: str,
    out: str | None,
    batch_size: int,
    device: str | None,
    workers: int | None,
    seed: int | None,
    in_memory: bool | None,
) -> Any:
    """Test the classifier of a linear/finetune/semi run RUN_OR_CKPT on STORE's test split:
    top-1, top-5, per-class accuracy, the confusion matrix (CSV and PNG)."""
    with cli_errors():
        st = open_store(store, benchmark)
        from s2v.train.downstream import test_classifier

        return test_classifier(
            run_or_ckpt, st.path, benchmark, clips, out, batch_size,
            2 if workers is None else workers, device or "auto", which,
        )  # fmt: skip


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--out", "-o", default=None, help="Output folder (default RUN_DIR/report).")
def report(run_dir: Path, out: str | None) -> None:
    """Loss and accuracy curves (PNG) of every metrics.jsonl below RUN_DIR and the results
    tables below it, as RUN_DIR/report/report.md."""
    with cli_errors():
        if not run_dir.is_dir():
            raise S2VError(f"{run_dir}: no such run directory")
        from s2v.train.report import report as write_report

        path = write_report(run_dir, out)
        click.echo(f"report: {path}")


@main.command()
@click.option("--out", "-o", default="demo_out", show_default=True, help="Output folder.")
@click.option(
    "--raw",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="NTU .skeleton files to use instead of a synthetic corpus.",
)
@click.option(
    "--minutes",
    type=click.FloatRange(0.1),
    default=None,
    help="Pretraining time budget, the schedule sized to it (7).",
)
@click.option("--classes", type=click.IntRange(2, 120), default=None, help="Synthetic classes.")
@click.option(
    "--per-class", type=click.IntRange(2), default=None, help="Synthetic clips per class."
)
@click.option("--model-size", type=click.Choice(("tiny", "small", "base")), default=None,
              help="Encoder size (tiny).")  # fmt: skip
@click.option("--two-person", type=click.FloatRange(0, 1), default=None,
              help="Synthetic clips with an idle bystander (0).")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Corpus and training seed.")
@click.option("--workers", type=int, default=None, help="Loader workers and conversion workers.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda...")
@click.option("--overwrite", is_flag=True, help="Replace the runs of an earlier demo in --out.")
def demo(
    out: str,
    raw: Path | None,
    minutes: float | None,
    classes: int | None,
    per_class: int | None,
    model_size: str | None,
    two_person: float | None,
    seed: int,
    workers: int | None,
    device: str,
    overwrite: bool,
) -> None:
    """End to end on a synthetic NTU-format corpus: synthesise, convert, pretrain a small
    Skeleton2vec for a few minutes, linear-probe it and a random encoder, compare."""
    with cli_errors():
        from s2v.train.demo import DemoConfig, run_demo

        cfg = DemoConfig(out=Path(out), raw=raw, seed=seed, device=device, overwrite=overwrite)
        given = dict(
            minutes=minutes, model_size=model_size, two_person=two_person, classes=classes,
            per_class=per_class, workers=workers,
        )  # fmt: skip
        for key, value in given.items():  # only what was given replaces the demo's defaults
            if value is not None:
                setattr(cfg, key, value)
        run_demo(cfg)
