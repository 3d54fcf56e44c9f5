"""USE for ESPnet: a unified model for universal sound separation and target sound extraction."""
from espnet2_use.version import __version__

__all__ = ["__version__"]
