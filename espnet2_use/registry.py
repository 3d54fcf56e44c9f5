"""Registration of USE's components into ESPnet's own choice registries."""
from espnet2.tasks import enh, enh_tse
from espnet2_use.extractor.use_extractor import USEExtractor
from espnet2_use.separator.use_separator import USESeparator

NAME = "use"


def _add(choices, cls) -> None:
    registered = choices.classes.get(NAME)
    if registered is not None and registered is not cls:
        raise RuntimeError(
            f"--{choices.name} {NAME} is already registered to {registered}; "
            f"cannot register {cls}"
        )
    choices.classes[NAME] = cls


def register() -> None:
    """Add ``separator: use`` to ESPnet's enh task and ``extractor: use`` to its tse task.

    Idempotent. ``import espnet2_use`` calls it, so a stock ESPnet recipe only needs
    to run ESPnet's entry points through ``python -m espnet2_use.bin.<name>``.
    """
    _add(enh.separator_choices, USESeparator)
    _add(enh_tse.extractor_choices, USEExtractor)
