"""The exceptions the library raises, so callers can catch them apart from others."""


class OptimizerError(ValueError):
	"""Bad input to an optimizer: a bad variable, hyperparameter, call order or checkpoint.
	The message names the variable and the problem; nothing has been changed when it is raised."""


class OptimizerTypeError(OptimizerError, TypeError):
	"""An OptimizerError about a type: a dtype, an array kind, a hyperparameter that is not a number."""


class BackendError(RuntimeError):
	"""A backend was asked for that cannot work here; the message says why."""
