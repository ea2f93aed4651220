"""What the benchmark updates: one tensor of N elements, ResNet-50's parameter list, many small tensors."""
from typing import List, Tuple

import numpy as np

Shape = Tuple[int, ...]


def singleTensor(n: int) -> List[Shape]:
	return [(int(n), )]


def resnet50() -> List[Shape]:
	"""The 161 parameter tensors of torchvision's ResNet-50 (25,557,032 parameters), in definition order."""
	shapes = [(64, 3, 7, 7), (64, ), (64, )]
	inplanes = 64

	for width, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
		for block in range(blocks):
			shapes += [(width, inplanes, 1, 1), (width, ), (width, ), (width, width, 3, 3), (width, ), (width, ),
					   (4 * width, width, 1, 1), (4 * width, ), (4 * width, )]
			if block == 0:
				shapes += [(4 * width, inplanes, 1, 1), (4 * width, ), (4 * width, )]
			inplanes = 4 * width

	return shapes + [(1000, 2048), (1000, )]


def smallTensors(count: int = 1000, seed: int = 0) -> List[Shape]:
	"""``count`` tensors of 256 to 4096 elements."""
	sizes = np.random.default_rng(seed).integers(256, 4097, count)
	return [(int(n), ) for n in sizes]


def tinyTensors(count: int) -> List[Shape]:
	"""``count`` tensors of 64 elements: the device work is negligible, so a step costs what the host spends."""
	return [(64, )] * count


def elements(shapes: List[Shape]) -> int:
	return int(sum(np.prod(s, dtype=np.int64) for s in shapes))
