"""The suite does not depend on its file order. The in-process reference suites (tests/suites.py) and the host pool's
checks run in one process with their files reversed, and shuffled (a fixed seed, so a failure reproduces): state that
one file leaves behind in the process (the floating-point mode, the selected backend, the kernels' worker threads,
memoized kernels and tables) must not change another file's results. The normal run takes them alphabetically."""
import random
import re
from pathlib import Path

import pytest

from conftest import runTestFiles
from suites import REFERENCE_SUITES

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(str(p.relative_to(ROOT)) for suite in REFERENCE_SUITES + ["tests/test_host_pool.py"]
			   for p in ([ROOT / suite] if suite.endswith(".py") else sorted((ROOT / suite).glob("test_*.py"))))
SEED = 20261202

pytestmark = pytest.mark.order


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
def test_reference_suites_pass_in_another_file_order(order):
	files = FILES[::-1] if order == "reversed" else random.Random(SEED).sample(FILES, len(FILES))
	assert sorted(files) == FILES and files != FILES
	summary = runTestFiles(files)
	assert re.search(r"^\d+ passed(, \d+ skipped)? in", summary), summary
