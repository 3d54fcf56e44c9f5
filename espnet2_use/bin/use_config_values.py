"""The recipe's sample rate and largest count, read from its training configs.

One source of truth per hyper-parameter: ``sample_rate`` and ``model_conf.max_num_src``
live in the training configs (stage 1 and stage 2 must agree); ``use.sh`` reads them
here. ``--fs`` / ``--max_num_src`` given to ``use.sh`` are a check, not a second
setting: a value other than the config's stops the recipe with both values named.
Prints ``<sample rate> <max_num_src>`` as the last line of stdout.

With ``--init_param <stage-1 model>`` (and the stage-2 config) it prints instead the
``--init_param`` value that starts stage 2 from stage 1 (``stage2_init_param``).

Example:
    python -m espnet2_use.bin.use_config_values --config conf/train_stage1.yaml \\
        --config conf/train_stage2.yaml [--fs 8k] [--max_num_src 3]
"""
import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence, Tuple

import yaml

from espnet2_use.data.kaldi_dir import parse_sample_rate


class ConfigValueError(ValueError):
    """The configs lack a value, disagree, or differ from a value given to the recipe."""


def config_values(
    configs: Sequence[Path], fs: Optional[str] = None, max_num_src: Optional[int] = None
) -> Tuple[int, int]:
    """``(sample_rate, max_num_src)`` of the training configs, checked against the recipe's.

    Raises:
        ConfigValueError: a config lacks one, the configs disagree, or ``fs`` /
            ``max_num_src`` differ from the configs' values (each message names both).
    """
    found = {"sample_rate": None, "model_conf.max_num_src": None}
    for config in configs:
        with open(config, encoding="utf-8") as f:
            conf = yaml.safe_load(f) or {}
        values = {
            "sample_rate": conf.get("sample_rate"),
            "model_conf.max_num_src": (conf.get("model_conf") or {}).get("max_num_src"),
        }
        for key, value in values.items():
            if value is None:
                raise ConfigValueError(f"{config}: no {key}; the training config is where it is set")
            value = int(value)
            if found[key] is not None and found[key][0] != value:
                raise ConfigValueError(
                    f"{config}: {key} {value} differs from {key} {found[key][0]} of {found[key][1]}"
                )
            found[key] = (value, config)
    rate, rate_file = found["sample_rate"]
    count, count_file = found["model_conf.max_num_src"]
    if fs is not None and fs != "" and parse_sample_rate(fs) != rate:
        raise ConfigValueError(
            f"--fs {fs} differs from sample_rate {rate} of {rate_file}; the training config "
            "sets the sample rate (drop --fs, or change the config)"
        )
    if max_num_src is not None and int(max_num_src) != count:
        raise ConfigValueError(
            f"--max_num_src {max_num_src} differs from model_conf.max_num_src {count} of "
            f"{count_file}; the training config sets it (drop --max_num_src, or change the config)"
        )
    return rate, count


def _tags(conf: dict) -> bool:
    model_conf = conf.get("model_conf") or {}
    return any(float(model_conf.get(k) or 0) > 0 for k in ("tag_weight", "attractor_tag_weight"))


def stage2_init_param(model: Path, stage2_config: Path) -> str:
    """ESPnet's ``--init_param`` value that starts stage 2 from the stage-1 model.

    Stage 1 trains no cue network (one it holds only names the tag vocabulary, and
    its modalities differ from stage 2's, so the fusion's shapes do too): its
    ``cue_network`` is left out. So is its tag head when stage 2 does not tag.

    Returns:
        ``<model>:::<excluded prefixes>`` (ESPnet's path:src_key:dst_key:excludes).
    """
    with open(stage2_config, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    excludes = ["cue_network"] + ([] if _tags(conf) else ["tag_head"])
    return f"{model}:::{','.join(excludes)}"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True, type=Path,
                        help="training config (repeat for stage 1 and stage 2)")
    parser.add_argument("--fs", default=None, help="the recipe's --fs, if given (16000, 16k)")
    parser.add_argument("--max_num_src", type=int, default=None, help="the recipe's --max_num_src, if given")
    parser.add_argument("--init_param", type=Path, default=None,
                        help="stage-1 model: print the --init_param of stage 2 (one --config: stage 2's)")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    if args.init_param is not None:
        if len(args.config) != 1:
            sys.stderr.write("use_config_values: error: --init_param takes one --config (stage 2's)\n")
            sys.exit(1)
        print(stage2_init_param(args.init_param, args.config[0]))
        return
    try:
        rate, count = config_values(args.config, args.fs, args.max_num_src)
    except (ConfigValueError, ValueError, OSError) as e:
        sys.stderr.write(f"use_config_values: error: {e}\n")
        sys.exit(1)
    print(f"{rate} {count}")


if __name__ == "__main__":
    main()
