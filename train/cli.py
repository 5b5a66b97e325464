"""s2v-train: the command line (click).

    s2v-train pretrain STORE --benchmark xsub [--preset s2v|mamp] [--config FILE] [--out DIR] ...
    torchrun --nproc-per-node 4 -m s2v.train pretrain STORE --benchmark xsub ...

Other subcommands (linear, finetune, semi, test, report) plug into the ``main`` group and reuse
``store_argument``, ``common_options``, ``open_store`` and ``cli_errors``;
``s2v.train.checkpoint.load_encoder`` gives them the pretrained (EMA teacher) encoder.
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
