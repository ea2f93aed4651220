"""Costs with PuzzleLib's sign convention: the returned grad is target - pred, the descent direction."""
