"""USE for ESPnet: a unified model for universal sound separation and target sound extraction.

Importing the package is cheap: it imports nothing of ESPnet or torch. It installs an
import hook (``espnet2_use.espnet_hooks``) so that, in this process, ESPnet's ``enh``
task gets ``separator: use`` and its ``tse`` task ``extractor: use`` as soon as ESPnet
loads them. ``from espnet2_use import USE`` loads the inference API on first use.
"""
from typing import Any

from espnet2_use.espnet_hooks import install as _install
from espnet2_use.version import __version__

_install()

__all__ = ["USE", "__version__", "register"]


def register() -> None:
    """Register USE into ESPnet's enh and tse tasks now (imports both; idempotent)."""
    from espnet2_use.registry import register as _register

    _register()


def __getattr__(name: str) -> Any:
    if name == "USE":
        from espnet2_use.inference import USE

        return USE
    raise AttributeError(f"module 'espnet2_use' has no attribute {name!r}")
