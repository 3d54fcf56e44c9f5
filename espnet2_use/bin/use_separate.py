"""``use-separate``: separate or extract sounds from audio files with a trained USE model.

Inputs: audio files, folders (searched recursively for --ext), or Kaldi ``wav.scp``
lists, all separated with one loading of the model. Per input, the outputs go to
``<outdir>/<name>/`` (``-o``): one wav per separated source, named by its index and
the label the model gives it (``1_siren.wav``; ``2_unknown.wav`` when no label scores
--name-threshold), or for extraction ``target.wav`` (the described sound) and
``residual.wav`` (the input less the target, at the input's level: everything but the
described sound), and ``manifest.json`` with the count, names, scores, existence
probabilities and output paths (``output``: the main output, the target, or with
``--remove`` the residual); ``--plot`` adds
``spectrogram.png``. An extracted target takes the level of the separated source it
most resembles (``--level mixture``: of the projection of the mixture onto it, without
the separation). Files are written whole (temporary name, then rename). An input
that cannot be read is reported and skipped; the exit status is 1 when any failed.

Examples:
    use-separate --model exp/use/use_model.zip mixture.wav -o out
    use-separate --model use_model.zip recordings/ --num-sources 2 --plot
    use-separate --model use_model.zip street.wav --text "a dog barking" --label dog
    use-separate --model use_model.zip podcast.wav --remove "a dog barking"
    use-separate --model use_model.zip street.wav --label dog --span 1.2-2.0
"""
import argparse
import gc
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

# Start-up: argument parsing (--help, a mistyped option) imports nothing heavy; the
# model stack (torch, the model's own classes, plotting) is imported once the arguments are
# valid. Timed by tools/bench_startup.py.

DEFAULT_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a")
# Cue flags written out here; every other raw cue row of the layout table gets a flag of
# its modality's name (--span), its value written as in a data file.
NAMED_CUES = ("text", "label", "image", "video", "example")


def iter_inputs(inputs: Sequence[str], extensions: Sequence[str]) -> Iterator[Tuple[str, str]]:
    """(name, path) of every input: files, folders (recursive), wav.scp lists."""
    from espnet2_use.data.kaldi_dir import read_kaldi_text

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in extensions):
                yield str(f.relative_to(path).with_suffix("")), str(f)
        elif path.name.endswith(".scp") and path.is_file():
            for utt, value in read_kaldi_text(path).items():
                yield utt, value
        else:
            # A missing file is reported by the processing step, with its name.
            yield path.stem, str(path)


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "source"


def check_writable(outdir: Path) -> None:
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=outdir, prefix=".write_test."):
            pass
    except OSError as e:
        raise SystemExit(f"use-separate: the output folder {outdir} is not writable ({e.strerror})")


def write_outputs(
    out_dir: Path, source: str, result, plot: bool, mixture_path: str, remove: bool = False
) -> Dict:
    """Audio files, optional spectrogram and the manifest of one input (``remove``: the
    residual of an extraction is the main output)."""
    from espnet2_use.inference import SeparationResult
    from espnet2_use.utils.fileio import atomic_write_json, atomic_write_wav

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: Dict = {"input": source, "fs": result.fs}
    if isinstance(result, SeparationResult):
        entries = []
        for k in range(result.count):
            name = result.names[k] if result.names else "unknown"
            path = out_dir / f"{k + 1}_{safe_name(name)}.wav"
            atomic_write_wav(path, result.sources[k], result.fs)
            score = result.name_scores[k] if result.name_scores else None
            entries.append({
                "index": k + 1, "name": name,
                "name_score": None if score is None or score != score else round(float(score), 4),
                "existence_prob": round(float(result.existence_prob[k]), 4),
                "path": str(path),
            })
        manifest.update(mode="separate", count=result.count, sources=entries)
        estimates = [result.sources[k] for k in range(result.count)]
        titles = ["mixture"] + [f"{e['index']}: {e['name']}" for e in entries]
    else:
        paths = {"target": out_dir / "target.wav", "residual": out_dir / "residual.wav"}
        atomic_write_wav(paths["target"], result.target, result.fs)
        atomic_write_wav(paths["residual"], result.residual, result.fs)
        main = "residual" if remove else "target"
        manifest.update(
            mode="remove" if remove else "extract", output=str(paths[main]), output_is=main,
            target=str(paths["target"]), residual=str(paths["residual"]),
        )
        estimates = [result.target, result.residual]
        titles = ["mixture", "target", "residual"]
    if plot:
        from espnet2_use.inference import prepare_audio
        from espnet2_use.scoring.plot import plot_spectrograms

        mixture = prepare_audio(mixture_path, None, result.fs)
        png = out_dir / "spectrogram.png"
        plot_spectrograms(mixture, [], estimates, result.fs, png, titles=titles)
        manifest["plot"] = str(png)
    atomic_write_json(out_dir / "manifest.json", manifest)
    return manifest


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="use-separate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("inputs", nargs="+", help="audio files, folders or wav.scp lists")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="packed model (the recipe's stage-8 zip file)")
    model.add_argument("--exp-dir", help="a training directory (config.yaml + weights)")
    parser.add_argument("-o", "--outdir", default="use_output", type=Path,
                        help="where the outputs go, one folder per input (default: %(default)s)")
    parser.add_argument("--num-sources", type=int, default=None, help="force the count")
    parser.add_argument("--text", help="extract: caption of the wanted sound")
    parser.add_argument("--label", help="extract: class name of the wanted sound")
    parser.add_argument("--image", help="extract: picture of the wanted sound's source")
    parser.add_argument("--video", help="extract: video clip of the wanted sound's source")
    parser.add_argument("--example", help="extract: audio example of the wanted sound")
    from espnet2_use.data.layout import RAW_CUES  # the table alone: nothing heavy

    for modality, row in RAW_CUES.items():
        if modality not in NAMED_CUES:
            parser.add_argument(f"--{modality}", help=f"extract: the {modality} cue, written as in a data "
                                f"dir's {row.file_name('k')}" + (f" ({row.value})" if row.value else ""))
    parser.add_argument("--remove", nargs="?", const=True, default=None, metavar="CAPTION",
                        help="remove the described sound: the residual (the input less the "
                        "target) is the main output. With a value, that value is the text cue "
                        "(--remove \"a dog barking\"); bare, with other cue flags "
                        "(--remove --label dog)")
    # USEModel's EXTRACT_LEVELS, spelled out: parsing imports nothing of the model.
    parser.add_argument("--level", choices=("separation", "mixture"), default=None,
                        help="extract: the target's level from the separated source it most "
                        "resembles (the default) or from projecting the mixture onto it (cheaper)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--chunk-seconds", type=float, default=10.0,
                        help="longer audio is processed in overlapping chunks of this length")
    parser.add_argument("--plot", action="store_true", help="write a spectrogram PNG per input")
    parser.add_argument("--name-threshold", type=float, default=None,
                        help="a separated source whose best label score (cosine) is below this "
                        "is named 'unknown' (default: USE.name_threshold, 0.3)")
    parser.add_argument("--ext", nargs="+", default=list(DEFAULT_EXTENSIONS),
                        help="extensions searched for in folders")
    parser.add_argument("--text-model", help="override the path of the HF text encoder")
    parser.add_argument("--video-weights", help="override the path of the timm weights")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    if args.num_sources is not None and args.num_sources < 1:
        raise SystemExit("use-separate: --num-sources must be >= 1")
    from espnet2_use.data.layout import RAW_CUES

    cues = {k: getattr(args, k) for k in NAMED_CUES + tuple(m for m in RAW_CUES if m not in NAMED_CUES)}
    remove = args.remove is not None
    if isinstance(args.remove, str):
        if args.text is not None:
            raise SystemExit("use-separate: --remove CAPTION is the text cue; give it or --text, not both")
        cues["text"] = args.remove
    extracting = any(v is not None for v in cues.values())
    if remove and not extracting:
        raise SystemExit("use-separate: --remove needs a cue: --remove \"a caption\" or a cue flag "
                         "(--label, --text, --image, --video, --example, --span)")
    if extracting and args.num_sources is not None:
        raise SystemExit("use-separate: --num-sources applies to separation, not extraction")
    if not extracting and args.level is not None:
        raise SystemExit("use-separate: --level applies to extraction (give a cue), not separation")
    check_writable(args.outdir)
    from tqdm import tqdm

    from espnet2_use.inference import USE
    overrides: Dict[str, Dict] = {}
    if args.text_model:
        overrides["text"] = {"model_path": args.text_model}
    if args.video_weights:
        overrides["video"] = {"weights": args.video_weights}
    try:
        if args.model:
            use = USE.from_packed(args.model, device=args.device, overrides=overrides)
        else:
            use = USE.from_exp(args.exp_dir, device=args.device, overrides=overrides)
    except (OSError, ValueError) as e:
        raise SystemExit(f"use-separate: cannot load the model: {e}")
    if args.name_threshold is not None:
        use.name_threshold = args.name_threshold
    items = list(iter_inputs(args.inputs, tuple(e.lower() for e in args.ext)))
    if not items:
        raise SystemExit(f"use-separate: no input audio found in {args.inputs} (extensions {args.ext})")
    failed = []
    for name, path in tqdm(items, desc="use-separate", unit="file"):
        try:
            if extracting:
                result: object = use.extract(path, chunk_seconds=args.chunk_seconds,
                                             level=args.level or "separation", **cues)
            else:
                result = use.separate(path, num_sources=args.num_sources,
                                      chunk_seconds=args.chunk_seconds)
            write_outputs(args.outdir / name, path, result, args.plot, path, remove=remove)
        except (OSError, ValueError, RuntimeError) as e:
            failed.append((path, str(e)))
            tqdm.write(f"use-separate: {path}: failed: {e}", file=sys.stderr)
            if os.environ.get("USE_SEPARATE_DEBUG"):
                traceback.print_exc()
    print(f"use-separate: {len(items) - len(failed)} of {len(items)} inputs done -> {args.outdir}")
    if failed:
        print(f"use-separate: {len(failed)} failed: " + ", ".join(p for p, _ in failed), file=sys.stderr)
        return 1
    return 0


def cli() -> None:
    code = main()
    # Every output is written and closed by now. Interpreter shutdown with torch
    # loaded spends about 1 s collecting garbage; frozen objects are skipped.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    cli()
