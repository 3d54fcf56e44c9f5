"""A dedicated sound counter, the count peer of the comparison (issue 24).

A small log-mel CNN with a count head and a tag head (:mod:`.logmel_cnn_counter`),
trained for a wall-clock budget on mixtures made afresh at every step from a recipe's
training sources (:mod:`.dynamic_mixing`, :mod:`.trainer`), and run over a data dir to
write its ``utt2num_src`` (:mod:`.inference`). Nothing here imports ESPnet.
"""
