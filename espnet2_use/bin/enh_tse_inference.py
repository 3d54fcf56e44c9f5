"""Alias kept for old scripts: ESPnet's `espnet2.bin.enh_tse_inference`, with USE registered.

Prefer the interpreter, which needs no USE-specific module name::

    espnet2-use-python -m espnet2.bin.enh_tse_inference ARGS...
"""
import espnet2_use  # noqa: F401  (USE joins ESPnet's tasks as they load)
from espnet2.bin.enh_tse_inference import get_parser, main

__all__ = ["get_parser", "main"]

if __name__ == "__main__":
    main()
