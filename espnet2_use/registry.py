"""Registration of USE's components into ESPnet's own choice registries.

Registration happens when ESPnet's task modules load (see ``espnet2_use.espnet_hooks``,
installed by ``import espnet2_use``); :func:`register` forces it now.
"""
from espnet2_use.espnet_hooks import NAME, install

__all__ = ["NAME", "register"]


def register() -> None:
    """Add ``separator: use`` (and the ``use_existence`` loss) to ESPnet's ``enh`` task
    and ``extractor: use`` to its ``tse`` task, importing both task modules.

    Idempotent. Not needed after ``import espnet2_use``, which registers USE as soon
    as ESPnet loads those modules; stock recipes run ESPnet's entry points through
    the ``espnet2-use-python`` interpreter.
    """
    install()
    import espnet2.tasks.enh  # noqa: F401
    import espnet2.tasks.enh_tse  # noqa: F401
