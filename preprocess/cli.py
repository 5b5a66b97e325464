"""The ``s2v-prep`` command line: convert, synthesise, inspect, verify, export."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from s2v.errors import S2VError


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="skeleton2vec")
def main() -> None:
    """Convert skeleton action datasets into chunked, compressed stores (Zarr or HDF5).

    \b
    s2v-prep synth DIR                    write a synthetic NTU-format corpus
    s2v-prep ntu60|ntu120 RAW_DIR -o OUT  convert NTU RGB+D .skeleton files
    s2v-prep pku1|pku2 RAW_DIR --labels DIR --splits DIR -o OUT
                                          convert PKU-MMD phase 1 / 2 into labelled clips
    s2v-prep info|verify STORE            inspect / check a store
    s2v-prep export STORE -o DIR|FILE     write CTR-GCN/MAMP .npz or a PYSKL .pkl
    s2v-prep import FILE -o OUT           build a store from a .npz or a PYSKL .pkl
    s2v-prep show STORE SAMPLE -o x.png   draw a sample (PNG strip or GIF)
    """


def _convert_options(benchmark_flags: list[tuple[str, str]]):
    """Options shared by the dataset commands; benchmark flags differ per dataset."""

    def deco(f):
        opts = [
            click.argument("raw_dir", type=click.Path(path_type=Path)),
            click.option(
                "-o",
                "--output",
                type=click.Path(path_type=Path),
                default=None,
                help="Store to write. Default: DATASET.zarr (or DATASET.h5) in the current folder.",
            ),
            click.option(
                "--format",
                "fmt",
                type=click.Choice(["zarr", "h5"]),
                default="zarr",
                show_default=True,
                help="Zarr v3 directory or one HDF5 file.",
            ),
            click.option(
                "--workers",
                type=click.IntRange(1),
                default=None,
                help="Worker threads (the kernels run without Python's lock). Default: all "
                "cores. Output is identical for any count.",
            ),
            click.option(
                "--preset",
                type=click.Choice(["ctrgcn", "none"]),
                default="ctrgcn",
                show_default=True,
                help="Denoising: 'ctrgcn' reproduces the reference exactly; 'none' keeps the two "
                "bodies with the largest motion, no filters.",
            ),
            click.option(
                "--align-view",
                is_flag=True,
                help="Rotate every sample so the spine points to +z and the shoulders to +x "
                "(recorded in the store attributes).",
            ),
            click.option(
                "--missing-list",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=None,
                help="List of samples to skip (official format or one name a line). "
                "Default: the built-in official list.",
            ),
            click.option(
                "--keep-missing", is_flag=True, help="Convert the listed missing samples anyway."
            ),
            click.option(
                "--overwrite",
                is_flag=True,
                help="Replace an existing store (or unfinished conversion) made from other "
                "inputs or options.",
            ),
            click.option(
                "--strict", is_flag=True, help="Exit with status 3 if any file failed to convert."
            ),
            click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
        ]
        for flag, bench in benchmark_flags:
            opts.append(
                click.option(
                    flag,
                    "bench_" + bench,
                    is_flag=True,
                    help=f"Write the {bench} split (default: all benchmarks of the dataset).",
                )
            )
        for o in reversed(opts):
            f = o(f)
        return f

    return deco


def _run_convert(
    dataset: str,
    raw_dir: Path,
    output,
    fmt,
    workers,
    preset,
    align_view,
    missing_list,
    keep_missing,
    overwrite,
    strict,
    quiet,
    benchmarks,
) -> None:
    from s2v.preprocess.convert import ConvertOptions, convert, default_output

    opts = ConvertOptions(
        dataset=dataset,
        benchmarks=tuple(benchmarks),
        preset=preset,
        align_view=align_view,
        missing_list=str(missing_list.resolve()) if missing_list else None,
        keep_missing=keep_missing,
        fmt=fmt,
    )
    output = output or default_output(dataset, fmt)
    if fmt == "h5" and output.suffix not in (".h5", ".hdf5"):
        _fail(S2VError(f"{output}: an HDF5 store needs a .h5 suffix"))
    if fmt == "zarr" and output.suffix in (".h5", ".hdf5"):
        _fail(S2VError(f"{output}: use --format h5 for an HDF5 store"))
    workers = workers or os.cpu_count() or 1
    try:
        s = convert(raw_dir, output, opts, workers=workers, overwrite=overwrite, progress=not quiet)
    except S2VError as exc:
        _fail(exc)
        return
    if s.already_complete:
        click.echo(f"{output} is already complete ({s.converted} samples): nothing to do")
        return
    rate = s.converted / s.seconds if s.seconds else 0.0
    lines = [
        f"wrote {output}",
        f"  converted      {s.converted} samples, {s.frames} frames"
        + (f" (resumed at file {s.resumed_from})" if s.resumed_from else ""),
        f"  skipped        {s.skipped_missing} listed as missing"
        + (f", {s.outside_dataset} outside {dataset}" if s.outside_dataset else ""),
        f"  failed         {len(s.failed)}",
    ]
    for f in s.failed[:20]:
        lines.append(f"    {f['reason']}")
    if len(s.failed) > 20:
        lines.append(f"    ... and {len(s.failed) - 20} more (s2v-prep info {output})")
    ratio = s.bytes_out / s.bytes_in if s.bytes_in else 0.0
    lines += [
        f"  bytes          {_human(s.bytes_in)} in, {_human(s.bytes_out)} out ({ratio:.1%})",
        f"  time           {s.seconds:.1f} s ({rate:.0f} files/s, {workers} workers)",
    ]
    click.echo("\n".join(lines))
    if strict and s.failed:
        sys.exit(3)


def _ntu_command(dataset: str, benchmarks: tuple[str, str], help_text: str):
    """The ntu60 / ntu120 commands: the same options, their own benchmark flags."""

    @main.command(dataset, help=help_text)
    @_convert_options([(f"--{b}", b) for b in benchmarks])
    def command(raw_dir, **kw) -> None:
        chosen = [b for b in benchmarks if kw.pop(f"bench_{b}")]
        _run_convert(dataset, raw_dir, benchmarks=chosen, **kw)

    return command


ntu60 = _ntu_command(
    "ntu60",
    ("xsub", "xview"),
    "Convert NTU RGB+D 60 .skeleton files in RAW_DIR (searched recursively) into one store."
    "\n\nFiles of setups 18-32 or actions 61-120 are ignored (they belong to NTU-120).",
)
ntu120 = _ntu_command(
    "ntu120",
    ("xsub", "xset"),
    "Convert NTU RGB+D 120 .skeleton files in RAW_DIR (searched recursively) into one store.",
)


def _pku_command(dataset: str, phase: str, split_files: str):
    """The pku1 / pku2 commands: the same options, another phase."""

    @main.command(
        dataset,
        help=f"Convert PKU-MMD phase {phase} (RAW_DIR: its skeleton .txt files) into one store "
        "of labelled clips.\n\nEvery label row becomes a clip (all-zero clips are dropped), "
        "labels 0-50, splits xsub and xview from the official split files. Faults (damaged "
        "rows, label rows outside the video, unknown videos in a split file) are reported and "
        "the rest converts.",
    )
    @click.argument("raw_dir", type=click.Path(path_type=Path))
    @click.option(
        "--labels",
        "labels_dir",
        type=click.Path(path_type=Path),
        required=True,
        help="Folder of the label files (same names as the skeleton files).",
    )
    @click.option(
        "--splits",
        "splits_dir",
        type=click.Path(path_type=Path),
        required=True,
        help=f"Folder of the official split files ({split_files}).",
    )
    @click.option(
        "-o",
        "--output",
        type=click.Path(path_type=Path),
        default=None,
        help=f"Store to write. Default: {dataset}.zarr (or {dataset}.h5) in the current folder.",
    )
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["zarr", "h5"]),
        default="zarr",
        show_default=True,
        help="Zarr v3 directory or one HDF5 file.",
    )
    @click.option(
        "--workers",
        type=click.IntRange(1),
        default=None,
        help="Worker processes. Default: all cores. Output is identical for any count.",
    )
    @click.option(
        "--trim",
        type=click.Choice(["mamp", "aimclr"]),
        default="mamp",
        show_default=True,
        help="How a label row cuts the video: mamp seq[start:end], aimclr seq[start-1:end] "
        "(one frame more, at the start).",
    )
    @click.option(
        "--center",
        is_flag=True,
        help="Centre every clip on joint 1 of actor 1 at its first non-zero frame (the NTU "
        "rule; MAMP does not centre PKU-MMD).",
    )
    @click.option(
        "--max-frames",
        type=click.IntRange(1),
        default=300,
        show_default=True,
        help="Keep the first N frames of longer clips (MAMP: 300).",
    )
    @click.option(
        "--xsub", "bench_xsub", is_flag=True, help="Write the xsub split (default: both)."
    )
    @click.option(
        "--xview", "bench_xview", is_flag=True, help="Write the xview split (default: both)."
    )
    @click.option(
        "--overwrite",
        is_flag=True,
        help="Replace an existing store (or unfinished conversion) made from other inputs or "
        "options.",
    )
    @click.option("--strict", is_flag=True, help="Exit with status 3 if anything was reported.")
    @click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
    def command(
        raw_dir,
        labels_dir,
        splits_dir,
        output,
        fmt,
        workers,
        trim,
        center,
        max_frames,
        bench_xsub,
        bench_xview,
        overwrite,
        strict,
        quiet,
    ) -> None:
        from s2v.preprocess.convert_pku import PkuOptions, convert_pku, default_output

        benches = [b for b, on in (("xsub", bench_xsub), ("xview", bench_xview)) if on]
        opts = PkuOptions(
            dataset=dataset,
            benchmarks=tuple(benches),
            trim=trim,
            center=center,
            max_frames=max_frames,
            fmt=fmt,
        )
        output = output or default_output(dataset, fmt)
        if fmt == "h5" and output.suffix not in (".h5", ".hdf5"):
            _fail(S2VError(f"{output}: an HDF5 store needs a .h5 suffix"))
        if fmt == "zarr" and output.suffix in (".h5", ".hdf5"):
            _fail(S2VError(f"{output}: use --format h5 for an HDF5 store"))
        workers = workers or os.cpu_count() or 1
        try:
            s = convert_pku(
                raw_dir,
                labels_dir,
                splits_dir,
                output,
                opts,
                workers=workers,
                overwrite=overwrite,
                progress=not quiet,
            )
        except S2VError as exc:
            _fail(exc)
            return
        if s.already_complete:
            click.echo(f"{output} is already complete ({s.converted} clips): nothing to do")
            return
        rate = s.videos / s.seconds if s.seconds else 0.0
        splits = ", ".join(f"{b} {tr}/{te}" for b, (tr, te) in s.splits.items())
        lines = [
            f"wrote {output}",
            f"  converted      {s.converted} clips of {s.videos} videos, {s.frames} frames "
            f"(trim {trim}{', centred' if center else ''})",
            f"  dropped        {s.dropped_empty} all-zero clips; {s.truncated} clips truncated "
            f"to {max_frames} frames",
        ]
        if s.outside_dataset:
            lines.append(f"  ignored        {s.outside_dataset} .txt files not named as {dataset}")
        lines.append(f"  failed         {len(s.failed)}")
        for f in s.failed[:20]:
            lines.append(f"    {f['reason']}")
        if len(s.failed) > 20:
            lines.append(f"    ... and {len(s.failed) - 20} more (s2v-prep info {output})")
        ratio = s.bytes_out / s.bytes_in if s.bytes_in else 0.0
        lines += [
            f"  splits         {splits or 'none'}",
            f"  bytes          {_human(s.bytes_in)} in, {_human(s.bytes_out)} out ({ratio:.1%})",
            f"  time           {s.seconds:.1f} s ({rate:.0f} videos/s, {workers} workers)",
        ]
        click.echo("\n".join(lines))
        if strict and s.failed:
            sys.exit(3)

    return command


pku1 = _pku_command("pku1", "1", "cross-subject.txt, cross-view.txt")
pku2 = _pku_command("pku2", "2", "cross_subject_v2.txt, cross_view_v2.txt")


@main.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--classes",
    type=click.IntRange(1, 120),
    default=10,
    show_default=True,
    help="Number of action classes (file names A001..).",
)
@click.option(
    "--per-class", type=click.IntRange(1), default=20, show_default=True, help="Clips per class."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--min-frames", type=click.IntRange(12, 300), default=40, show_default=True)
@click.option("--max-frames", type=click.IntRange(12, 300), default=120, show_default=True)
@click.option(
    "--two-person",
    type=click.FloatRange(0, 1),
    default=0.2,
    show_default=True,
    help="Share of clips with a second person.",
)
@click.option(
    "--faults",
    is_flag=True,
    help="Inject real-data faults: 0-body frames, short spurious bodies, furniture.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def synth(out_dir, classes, per_class, seed, min_frames, max_frames, two_person, faults, quiet):
    """Write a synthetic NTU-format corpus of .skeleton files into OUT_DIR (deterministic)."""
    from s2v.preprocess.synth import SynthConfig, generate_corpus

    if min_frames > max_frames:
        _fail(S2VError("--min-frames must not exceed --max-frames"))
    cfg = SynthConfig(
        classes=classes,
        per_class=per_class,
        seed=seed,
        min_frames=min_frames,
        max_frames=max_frames,
        two_person_fraction=two_person,
        faults=faults,
    )
    import time

    t0 = time.perf_counter()
    paths = generate_corpus(out_dir, cfg, progress=not quiet)
    size = sum(p.stat().st_size for p in paths)
    click.echo(
        f"wrote {len(paths)} .skeleton files ({_human(size)}) to {out_dir} "
        f"in {time.perf_counter() - t0:.1f} s"
    )


@main.command("info")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the information as JSON.")
def info(store, as_json) -> None:
    """Counts, splits, label histogram and attributes of STORE."""
    import s2v
    from s2v.verify import store_info

    try:
        data = store_info(s2v.open(store))
    except S2VError as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    fps = data["frames_per_sample"]
    out = [
        f"{data['path']}  ({data['format']}, {data['dataset']})",
        f"  samples  {data['samples']}   frames {data['frames']} "
        f"(per sample min {fps['min']}, mean {fps['mean']:.1f}, max {fps['max']})",
        "  splits   "
        + ", ".join(f"{b} {v['train']}/{v['test']}" for b, v in data["splits"].items()),
        f"  columns  {', '.join(data['columns'])}",
        "  labels",
    ]
    for name, count in data["labels"].items():
        out.append(f"    {count:7d}  {name}")
    out.append("  attributes")
    for k, v in data["attributes"].items():
        text = json.dumps(v)
        out.append(f"    {k}: {text if len(text) < 200 else text[:197] + '...'}")
    click.echo("\n".join(out))


@main.command("verify")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def verify(store, quiet) -> None:
    """Check STORE: checksums, offsets, splits. Exit status 1 on any fault."""
    from tqdm import tqdm

    from s2v.verify import verify_store

    bar = tqdm(unit="sample", desc="verifying", disable=quiet, file=sys.stderr)
    faults = verify_store(store, progress=bar.update)
    bar.close()
    if faults:
        for f in faults:
            click.echo(f"FAULT {store}: {f}", err=True)
        sys.exit(1)
    click.echo(f"{store}: OK")


@main.command("export")
@click.argument("store", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ctrgcn", "pyskl"]),
    default="ctrgcn",
    show_default=True,
    help="ctrgcn: one CTR-GCN/MAMP .npz per benchmark; pyskl: one PYSKL/MMAction2 annotation "
    ".pkl with every benchmark's split.",
)
@click.option(
    "--benchmark",
    "benchmarks",
    multiple=True,
    help="Benchmark(s) to export (repeatable). Default: all in the store.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="ctrgcn: folder for the .npz files. pyskl: the .pkl file (or a folder for "
    "DATASET_3danno.pkl).",
)
@click.option(
    "--pad",
    default="300",
    show_default=True,
    help="ctrgcn: frames per sample, or 'longest' (the longest sample of the benchmark).",
)
@click.option(
    "--naming",
    type=click.Choice(["mamp", "ctrgcn"]),
    default="mamp",
    show_default=True,
    help="ctrgcn: file names NTU60_XSub.npz (mamp) or NTU60_CS.npz.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def export(store, fmt, benchmarks, output, pad, naming, quiet) -> None:
    """Write STORE's benchmarks in another toolkit's format."""
    import s2v
    from s2v.preprocess.export import export_ctrgcn, export_pyskl

    try:
        st = s2v.open(store)
        if fmt == "pyskl":
            if output.suffix.lower() not in (".pkl", ".pickle"):
                output = output / f"{st.dataset or 'store'}_3danno.pkl"
            path = export_pyskl(st, output, benchmarks=benchmarks or None, progress=not quiet)
            click.echo(f"wrote {path} ({len(st)} samples, {_human(path.stat().st_size)})")
            return
        if output.is_file():
            raise S2VError(f"{output}: --format ctrgcn writes into a folder, this is a file")
        pad_len = None if pad == "longest" else int(pad)
        for bench in benchmarks or st.benchmarks:
            path = export_ctrgcn(st, bench, output, pad=pad_len, naming=naming, progress=not quiet)
            click.echo(f"wrote {path} ({_human(path.stat().st_size)})")
    except ValueError:
        _fail(S2VError(f"--pad must be a number of frames or 'longest', got '{pad}'"))
    except S2VError as exc:
        _fail(exc)


@main.command("import")
@click.argument("source", metavar="FILE", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Store to write (.zarr directory or .h5 file).",
)
@click.option(
    "--dataset",
    default=None,
    help="Dataset name (ntu60, ntu120, pku1, pku2, or any). Default: from the file name.",
)
@click.option(
    "--benchmark",
    default=None,
    help=".npz: the benchmark its train/test parts belong to. Default: from the file name "
    "(XSub/CS/CSub -> xsub, XView/CV -> xview, XSet/CSet -> xset).",
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Allow loading a PYSKL .pkl: unpickling runs code stored in the file, so only for "
    "files from a source you trust.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing store.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def import_(source, output, dataset, benchmark, trust_pickle, overwrite, quiet) -> None:
    """Build a store from a CTR-GCN/MAMP .npz or a PYSKL annotation .pkl (FILE).

    \b
    .npz: frames up to each sample's last non-zero row; NTU-120's copy of a single
          actor into slot 2 is undone (recorded as slots=1, so a ctrgcn export writes
          the same file again); names sample_000000, ...
    .pkl: names from frame_dir, benchmarks from the split keys (xsub_train/xsub_val).
    """
    from s2v.preprocess.importers import import_file

    try:
        s = import_file(
            source,
            output,
            dataset=dataset,
            benchmark=benchmark,
            trust_pickle=trust_pickle,
            overwrite=overwrite,
            progress=not quiet,
        )
    except S2VError as exc:
        _fail(exc)
        return
    if s.already_complete:
        click.echo(f"{output} is already complete ({s.samples} samples): nothing to do")
        return
    splits = ", ".join(f"{b} {tr}/{te}" for b, (tr, te) in (s.splits or {}).items())
    click.echo(
        "\n".join(
            [
                f"wrote {output}",
                f"  imported       {s.samples} samples, {s.frames} frames ({s.kind}, {s.dataset})",
                f"  splits         {splits or 'none'}",
                f"  bytes          {_human(s.bytes_in)} in, {_human(s.bytes_out)} out",
                f"  time           {s.seconds:.1f} s",
            ]
        )
    )


@main.command("show")
@click.argument("store", type=click.Path(path_type=Path))
@click.argument("sample", metavar="SAMPLE_OR_NAME")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="out.png (a strip of frames side by side) or out.gif (an animation).",
)
@click.option(
    "--motion", is_flag=True, help="Colour the joints by the motion prior (with a colorbar)."
)
@click.option(
    "--frames",
    type=click.IntRange(1),
    default=None,
    help="Frames drawn, spread evenly over the clip. Default: 8 (png), all (gif).",
)
def show(store, sample, output, motion, frames) -> None:
    """Draw sample SAMPLE_OR_NAME (its name or index) of STORE, seen from the front.

    Bones of actor 1 in blue, actor 2 in orange; needs matplotlib (the 'viz' extra).
    """
    import s2v
    from s2v.preprocess.show import render

    try:
        path = render(s2v.open(store), sample, output, motion=motion, frames=frames)
    except S2VError as exc:
        _fail(exc)
        return
    click.echo(f"wrote {path} ({_human(path.stat().st_size)})")


if __name__ == "__main__":
    main()
