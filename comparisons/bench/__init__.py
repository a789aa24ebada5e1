"""Speed measurements: loop vs im2col vs PyTorch vs Keras, and the ``cnnref bench`` report."""
