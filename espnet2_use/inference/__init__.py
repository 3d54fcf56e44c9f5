"""Using a trained USE model, by concern: ``api`` (``USE``: loading, ``separate``,
``extract``), ``chunking`` (long recordings in overlapping chunks, source tracking
across them), ``packing`` (the one-file packed model, written by ``bin/use_pack``).
"""
from espnet2_use.inference.api import (  # noqa: F401
    AudioLike,
    ExtractionResult,
    SeparationResult,
    USE,
    prepare_audio,
)
from espnet2_use.inference.chunking import (  # noqa: F401
    _SourceTracker,
    chunk_starts,
    chunk_windows,
    crossfade,
)
from espnet2_use.inference.packing import (  # noqa: F401
    MODEL_FILE_PREFERENCE,
    PACK_CONFIG,
    PACK_META,
    PACK_MODEL,
    pack,
    recipe_root,
    unpack,
)
