"""Former home of the Kaldi-dir reader/writer: see :mod:`espnet2_use.data.kaldi_dir`.

Kept only for ``egs2/mini_use/use1/local/compare.py``, which imports it (that file is
maintained with the model); new code imports ``espnet2_use.data.kaldi_dir``. The one
upward import of ``utils/``, allowed by name in ``test/test_import_graph.py``.
"""
from espnet2_use.data.kaldi_dir import read_kaldi_text, write_kaldi_text  # noqa: F401
