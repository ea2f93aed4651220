/* The Python face of the host kernels (kernels/rmsprop_host.c): one call per dtype per step.
 * Arguments are plain integers (addresses) and floats, so no NumPy headers are needed to build it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "host_pool.h"
#include "rmsprop_host.h"


/* Parses (tableAddress, count, code, threads), the arguments of nonFinite; 0 on error. */
static int tableArgs(PyObject *const *args, Py_ssize_t nargs, const char *usage, void **table, long *count, long *code,
					 long *threads)
{
	if (nargs != 4)
	{
		PyErr_SetString(PyExc_TypeError, usage);
		return 0;
	}

	*table = PyLong_AsVoidPtr(args[0]);
	*count = PyLong_AsLong(args[1]);
	*code = PyLong_AsLong(args[2]);
	*threads = PyLong_AsLong(args[3]);
	return !PyErr_Occurred();
}


static PyObject *nonFinite(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	void *table;
	long count, dtype, threads;
	if (!tableArgs(args, nargs, "nonFinite(tableAddress, count, dtypeCode, threads) takes 4 arguments", &table, &count, &dtype, &threads))
		return NULL;

	int found;
	Py_BEGIN_ALLOW_THREADS
	found = rmspropHostNonFinite((const TensorEntry *)table, (int)count, (int)dtype, (int)threads);
	Py_END_ALLOW_THREADS

	return PyBool_FromLong(found);
}


/* Parses (tableAddress, count, code, flavour, threads), the arguments of every update: flavour is the bytes of one
   RMSPropFlavour (puzzlelib_rmsprop/Kernels.py builds them); 0 on error. */
static int flavourArgs(PyObject *const *args, Py_ssize_t nargs, const char *name, void **table, long *count, long *code,
					   RMSPropFlavour *f, long *threads)
{
	if (nargs != 5)
	{
		PyErr_Format(PyExc_TypeError, "%s(tableAddress, count, code, flavour, threads) takes 5 arguments", name);
		return 0;
	}

	char *bytes;
	Py_ssize_t length;
	if (PyBytes_AsStringAndSize(args[3], &bytes, &length) < 0)
		return 0;
	if (length != (Py_ssize_t)sizeof(RMSPropFlavour))
	{
		PyErr_Format(PyExc_ValueError, "%s: flavour must be the %d bytes of one RMSPropFlavour, got %zd", name,
					 (int)sizeof(RMSPropFlavour), length);
		return 0;
	}
	memcpy(f, bytes, sizeof(*f));

	*table = PyLong_AsVoidPtr(args[0]);
	*count = PyLong_AsLong(args[1]);
	*code = PyLong_AsLong(args[2]);
	*threads = PyLong_AsLong(args[4]);
	return !PyErr_Occurred();
}


static PyObject *rmsprop(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	void *table;
	long count, dtype, threads;
	RMSPropFlavour f;
	if (!flavourArgs(args, nargs, "rmsprop", &table, &count, &dtype, &f, &threads))
		return NULL;
	if (dtype != RMSPROP_FLOAT32 && dtype != RMSPROP_FLOAT16 && dtype != RMSPROP_BFLOAT16)
	{
		PyErr_Format(PyExc_ValueError, "dtypeCode must be %d (float32), %d (float16) or %d (bfloat16), got %ld",
					 RMSPROP_FLOAT32, RMSPROP_FLOAT16, RMSPROP_BFLOAT16, dtype);
		return NULL;
	}

	/* the kernel touches only the caller's buffers, so other Python threads may run meanwhile */
	Py_BEGIN_ALLOW_THREADS
	rmspropHostApply((const TensorEntry *)table, (int)count, (int)dtype, &f, (int)threads);
	Py_END_ALLOW_THREADS

	Py_RETURN_NONE;
}


static PyObject *flavour(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	void *table;
	long count, combo, threads;
	RMSPropFlavour f;
	if (!flavourArgs(args, nargs, "flavour", &table, &count, &combo, &f, &threads))
		return NULL;
	if (combo < RMSPROP_FLAVOUR_FLOAT32 || combo > RMSPROP_FLAVOUR_BFLOAT16_STATE32)
	{
		PyErr_Format(PyExc_ValueError, "unknown parameter/state combination %ld", combo);
		return NULL;
	}

	Py_BEGIN_ALLOW_THREADS
	rmspropHostFlavour((const FlavourEntry *)table, (int)count, (int)combo, &f, (int)threads);
	Py_END_ALLOW_THREADS

	Py_RETURN_NONE;
}


static PyObject *quant8(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	void *table;
	long count, dtype, threads;
	RMSPropFlavour f;
	if (!flavourArgs(args, nargs, "quant8", &table, &count, &dtype, &f, &threads))
		return NULL;
	if (dtype != RMSPROP_FLOAT32 && dtype != RMSPROP_FLOAT16 && dtype != RMSPROP_BFLOAT16)
	{
		PyErr_Format(PyExc_ValueError, "quant8: unknown parameter dtype code %ld", dtype);
		return NULL;
	}

	Py_BEGIN_ALLOW_THREADS
	rmspropHostQuant8((const Quant8Entry *)table, (int)count, (int)dtype, &f, (int)threads);
	Py_END_ALLOW_THREADS

	Py_RETURN_NONE;
}


/* quantize(values, n, codes, scales, signed) and dequantize(codes, n, scales, values, signed): addresses and sizes. */
static int codecArgs(PyObject *const *args, Py_ssize_t nargs, const char *usage, void **a, long long *n, void **b,
					 void **c, int *isSigned)
{
	if (nargs != 5)
	{
		PyErr_SetString(PyExc_TypeError, usage);
		return 0;
	}
	*a = PyLong_AsVoidPtr(args[0]);
	*n = PyLong_AsLongLong(args[1]);
	*b = PyLong_AsVoidPtr(args[2]);
	*c = PyLong_AsVoidPtr(args[3]);
	*isSigned = PyObject_IsTrue(args[4]);
	return !PyErr_Occurred();
}


static PyObject *quantize(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	void *values, *codes, *scales;
	long long n;
	int isSigned;
	if (!codecArgs(args, nargs, "quantize(values, n, codes, scales, signed) takes 5 arguments", &values, &n, &codes, &scales, &isSigned))
		return NULL;

	Py_BEGIN_ALLOW_THREADS
	rmspropHostQuantize((const float *)values, n, (unsigned char *)codes, (float *)scales, isSigned);
	Py_END_ALLOW_THREADS
	Py_RETURN_NONE;
}


static PyObject *dequantize(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	void *codes, *scales, *values;
	long long n;
	int isSigned;
	if (!codecArgs(args, nargs, "dequantize(codes, n, scales, values, signed) takes 5 arguments", &codes, &n, &scales, &values, &isSigned))
		return NULL;

	Py_BEGIN_ALLOW_THREADS
	rmspropHostDequantize((const unsigned char *)codes, (const float *)scales, n, (float *)values, isSigned);
	Py_END_ALLOW_THREADS
	Py_RETURN_NONE;
}


static PyObject *maxThreads(PyObject *self, PyObject *unused)
{
	(void)self; (void)unused;
	return PyLong_FromLong(rmspropHostMaxThreads());
}


static PyObject *threaded(PyObject *self, PyObject *unused)
{
	(void)self; (void)unused;
	return PyBool_FromLong(poolThreaded());
}


static PyMethodDef methods[] = {
	{"rmsprop", (PyCFunction)(void (*)(void))rmsprop, METH_FASTCALL, "Apply RMSProp to every row of a tensor table."},
	{"flavour", (PyCFunction)(void (*)(void))flavour, METH_FASTCALL, "RMSProp flavours over a table of FlavourEntry rows."},
	{"quant8", (PyCFunction)(void (*)(void))quant8, METH_FASTCALL, "8-bit state update over a table of Quant8Entry rows."},
	{"quantize", (PyCFunction)(void (*)(void))quantize, METH_FASTCALL, "8-bit codes and block scales of float32 values."},
	{"dequantize", (PyCFunction)(void (*)(void))dequantize, METH_FASTCALL, "float32 values of 8-bit codes and block scales."},
	{"nonFinite", (PyCFunction)(void (*)(void))nonFinite, METH_FASTCALL, "Whether any grad in the table is inf or NaN."},
	{"maxThreads", maxThreads, METH_NOARGS, "Threads the kernels use by default."},
	{"threaded", threaded, METH_NOARGS, "Whether the kernels can start worker threads (POSIX threads)."},
	{NULL, NULL, 0, NULL}
};


static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cpukernels", "RMSProp host kernels.", -1, methods};


PyMODINIT_FUNC PyInit__cpukernels(void)
{
	return PyModule_Create(&module);
}
