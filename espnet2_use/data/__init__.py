"""Data handling of USE: the layout table, the Kaldi-dir reader/writer, the validator,
mixture synthesis for the recipes.

- ``layout``: per-source file -> batch data name -> loader -> cached or raw, the one
  description of a data directory that every consumer reads;
- ``kaldi_dir``: reading and writing Kaldi-style data and decoding directories;
- ``validate``: checking a data directory against the contract;
- ``corpus``: the shared pieces of the recipes' ``local/prepare_*.py`` (mixture synthesis).

Nothing here imports ESPnet or torch: recipes' data preparation imports it in well
under a second.
"""
