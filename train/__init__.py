"""The training stage: CIFAR-10 data, the seed CNN, and a loop that writes a self-describing checkpoint.

``export_kit`` never imports this package; it only names ``train.models`` in the checkpoints it writes, so any
other package can take its place as the source of a model.
"""
