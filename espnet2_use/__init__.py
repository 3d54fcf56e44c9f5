"""USE for ESPnet: a unified model for universal sound separation and target sound extraction.

Importing the package registers USE's components into ESPnet's choice registries
(``separator: use`` in the ``enh`` task, ``extractor: use`` in the ``tse`` task).
"""
from espnet2_use.registry import register
from espnet2_use.version import __version__

register()

from espnet2_use.inference import USE  # noqa: E402  (after registration, as it builds models)

__all__ = ["USE", "__version__", "register"]
