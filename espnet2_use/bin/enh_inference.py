"""ESPnet's `espnet2.bin.enh_inference`, with USE's components registered first."""
import espnet2_use  # noqa: F401  (registers separator/extractor "use")
from espnet2.bin.enh_inference import get_parser, main

__all__ = ["get_parser", "main"]

if __name__ == "__main__":
    main()
