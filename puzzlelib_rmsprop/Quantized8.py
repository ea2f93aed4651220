"""8-bit blockwise optimizer state (stateBits=8): placeholder, filled in by issue 12's work."""
QUANT_BLOCK = 256
