"""An independent NumPy reference for the tests: PuzzleLib's RMSProp formula, written out from its documentation
and its kernel, in float32 with the kernel's operation order (so agreement is bit for bit)."""
import numpy as np


def rmspropStep(param, grad, ms, learnRate, factor=0.9, epsilon=1e-5):
	"""New (param, ms) in the storage dtype; math in float32. ``learnRate`` is the optimizer's rate times the
	variable's multiplier, multiplied in double and rounded to float32, as PuzzleLib passes it to its kernel."""
	dtype = param.dtype
	p, g, m = (np.asarray(a).astype(np.float32) for a in (param, grad, ms))
	f, lr, eps = np.float32(factor), np.float32(learnRate), np.float32(epsilon)

	m = f * m + (np.float32(1.0) - f) * g * g
	p = p + lr * g / (np.sqrt(m) + eps)

	return p.astype(dtype), m.astype(dtype)


def weightDecay(grad, param, rate):
	"""PuzzleLib's weightDecayKer: grad - rate * param in float32."""
	return (grad - np.float32(rate) * param).astype(grad.dtype)


def flavourStep(param, grad, ms, mg, mom, learnRate, momentum, factor, epsilon, weightDecay=0.0, centered=False,
				epsilonInSqrt=False, momentumMode=0, varianceFloor=0.0):
	"""kernels/rmsprop_update.h's rmspropFlavourStep in NumPy float32, same operation order: new
	(param, ms, mg, mom) in the input dtypes (mg, mom may be None)."""
	f32 = lambda a: None if a is None else np.asarray(a).astype(np.float32)
	p, g, m, a, d = f32(param), f32(grad), f32(ms), f32(mg), f32(mom)
	fac, eps, wd = np.float32(factor), np.float32(epsilon), np.float32(weightDecay)
	lr, mo = np.float32(learnRate), np.float32(momentum)

	if weightDecay != 0.0:
		g = g - wd * p
	m = fac * m + (np.float32(1.0) - fac) * g * g
	var = m
	if centered:
		a = fac * a + (np.float32(1.0) - fac) * g
		var = m - a * a
		if varianceFloor:  # 8-bit state: var >= varianceFloor * ms
			var = np.maximum(var, np.float32(varianceFloor) * m)
	denom = np.sqrt(var + eps) if epsilonInSqrt else np.sqrt(var) + eps

	if momentumMode == 1:
		d = mo * d + g / denom
		p = p + lr * d
	elif momentumMode == 2:
		d = mo * d + lr * g / denom
		p = p + d
	else:
		p = p + lr * g / denom

	cast = lambda new, old: None if old is None else new.astype(np.asarray(old).dtype)
	return cast(p, param), cast(m, ms), cast(a, mg), cast(d, mom)


def tf1Step(param, grad, ms, mg, mom, learnRate, decay, momentum, epsilon, centered):
	"""TensorFlow 1's RMSPropOptimizer (training_ops ApplyRMSProp / ApplyCenteredRMSProp), float32, with TF's
	gradient sign (minus ours): ms starts at 1; mom accumulates lr * g / sqrt(ms [- mg^2] + epsilon)."""
	p, g, m = (np.asarray(x, np.float32) for x in (param, grad, ms))
	m = m + (g * g - m) * np.float32(1 - decay)
	denom = m
	if centered:
		mg = mg + (g - mg) * np.float32(1 - decay)
		denom = m - mg * mg
	mom = np.float32(momentum) * mom + np.float32(learnRate) * g / np.sqrt(denom + np.float32(epsilon))
	return p - mom, m, mg, mom


def kerasStep(param, grad, velocity, averageGrad, momentum, learnRate, rho, momentumRate, epsilon, centered):
	"""Keras 3's RMSprop.update_step (keras/src/optimizers/rmsprop.py), float32, with Keras's gradient sign (minus
	ours): velocity (ms) starts at 0; epsilon inside the square root; the momentum buffer accumulates the increment,
	lr included. Written from Keras's source, not from kernels/rmsprop_update.h."""
	f = np.float32
	variable, gradient = np.asarray(param, f), np.asarray(grad, f)
	velocity = f(rho) * velocity + f(1 - rho) * np.square(gradient)
	if centered:
		averageGrad = f(rho) * averageGrad + f(1 - rho) * gradient
		denominator = velocity - np.square(averageGrad) + f(epsilon)
	else:
		denominator = velocity + f(epsilon)
	increment = f(learnRate) * gradient / np.sqrt(denominator)
	if momentumRate > 0:
		momentum = f(momentumRate) * momentum + increment
		variable = variable - momentum
	else:
		variable = variable - increment
	return variable, velocity, averageGrad, momentum
