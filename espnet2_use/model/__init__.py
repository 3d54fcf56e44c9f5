"""USE's model, one job a file.

- ``network``: the parts (encoder, separator, decoder, cue network) and the named
  steps that training and inference share (encode, separate, extract, decode, cues).
- ``inference``: what a trained model does for users: separate, extract (target and
  residual), the level rules, fitting outputs to their mixture.
- ``batch``: reading a training batch: references and counts, source classes, target
  picking, (row, slot) bookkeeping.

The trainable ESPnet model (forward -> losses) is ``espnet2_use.espnet_model.USEModel``,
built on ``inference.USEInference``.
"""
