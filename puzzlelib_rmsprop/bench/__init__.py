"""The benchmark: ``python -m puzzlelib_rmsprop.bench [--quick] [--out DIR]``.

Measures, in one run and side by side, our update, the same-traffic limit (the update's reads and writes with
no math, through the same table and threads), a STREAM triad for reference, a naive NumPy RMSProp,
torch.optim.RMSprop (foreach on and off) where torch is installed, and PuzzleLib's own kernel where PuzzleLib is
importable. Writes DIR/results.json, DIR/bandwidth.png and prints a table of ratios. It is not a test.
"""
