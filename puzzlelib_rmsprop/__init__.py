"""puzzlelib_rmsprop: a drop-in, fused-kernel RMSProp for PuzzleLib-style training code.

    from puzzlelib_rmsprop import RMSProp
    optimizer = RMSProp(learnRate=0.001, factor=0.9)
    optimizer.setupOn(net, useGlobalState=True)
"""
import logging

from . import Config
from .Errors import BackendError, OptimizerError
from .Hooks import Hook, WeightDecay
from .Optimizer import Optimizer
from .RMSProp import RMSProp
from .RMSPropGraves import RMSPropGraves
from .Variable import Variable

logging.getLogger("puzzlelib_rmsprop").addHandler(logging.NullHandler())

__version__ = "0.1.0"
__all__ = ["Config", "RMSProp", "RMSPropGraves", "Optimizer", "Variable", "WeightDecay", "Hook", "OptimizerError", "BackendError"]
