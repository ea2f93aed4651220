"""The in-process reference suites: rerun on the emulated CUDA driver (test_cuda_emulated.py) and in other file
orders (test_file_order.py)."""
REFERENCE_SUITES = ["tests/test_RMSProp.py", "tests/test_Optimizer.py", "tests/test_flavours.py", "tests/test_Checkpoint.py",
					"tests/test_Guarantees.py", "tests/test_puzzlelib_parity.py", "tests/test_demo.py", "tests/Backend",
					"tests/test_Quantized8.py", "tests/test_Quantized8_training.py", "tests/test_replaced_arrays.py",
					"tests/test_puzzlelib_layout.py", "tests/test_drop_in.py",
					"tests/test_arithmetic_puzzlelib.py"]
