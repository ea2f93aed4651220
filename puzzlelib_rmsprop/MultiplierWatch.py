"""Watched variables: the variables global state rebinds tell the optimizer when a multiplier (learnRate, momRate,
wc) is assigned, so a step re-reads the multipliers only after one was set."""
import copyreg
from typing import Dict

#: the per-variable multipliers a step depends on: assigning one on a watched variable bumps its watch's version
MULTIPLIERS = frozenset(("learnRate", "momRate", "wc"))


class MultiplierWatch:
	"""Counts assignments of a multiplier (``MULTIPLIERS``) on the variables global state rebinds, so that a step
	re-reads their multipliers only after one was set (per-step work that does not grow with the variables)."""

	__slots__ = ("version", )

	def __init__(self):
		self.version = 0


_watchedClasses: Dict[type, type] = {}


def watchedClass(cls: type) -> type:
	"""A subclass of ``cls`` (the module's own Variable class: isinstance checks and methods keep working) whose
	instances tell their ``_multiplierWatch`` when a multiplier is assigned. One per class; copies and pickles of an
	instance are plain ``cls`` instances (unwatched)."""
	if getattr(cls, "_watchedBase", None) is not None:  # a variable rebound before (setupOn again): its own class
		cls = cls._watchedBase
	sub = _watchedClasses.get(cls)
	if sub is None:
		def __setattr__(self, name, value):
			super(sub, self).__setattr__(name, value)
			if name in MULTIPLIERS:
				watch = self.__dict__.get("_multiplierWatch")
				if watch is not None:
					watch.version += 1

		def __reduce_ex__(self, protocol):
			state = {k: v for k, v in self.__dict__.items() if k != "_multiplierWatch"}
			return (copyreg._reconstructor, (cls, object, None), state)

		sub = type(cls.__name__, (cls, ), {"__setattr__": __setattr__, "__reduce_ex__": __reduce_ex__, "_watchedBase": cls,
										   "__module__": cls.__module__, "__qualname__": cls.__qualname__})
		_watchedClasses[cls] = sub
	return sub


def watch(var, multipliers: MultiplierWatch):
	"""``var``, of its watched class, reporting to ``multipliers``."""
	object.__setattr__(var, "_multiplierWatch", multipliers)
	return var
