/* One row of a multi-tensor table: three equally sized tensors (param, grad, ms) and their step size.
 * The Python side builds the same layout as a NumPy structured array (Backend/TensorTable.py):
 * 48 bytes a row, no padding, on every 64-bit platform.
 *
 * firstUnit (CUDA only): a launch's work is a flat list of units, row after row, and a row's firstUnit is the units
 * of the rows before it, so a thread finds the row of its unit by a search (multi_tensor_apply.cuh, visitRows).
 */
#ifndef PUZZLELIB_RMSPROP_TENSOR_TABLE_H
#define PUZZLELIB_RMSPROP_TENSOR_TABLE_H

typedef struct
{
	void *param;
	const void *grad;
	void *ms;
	long long size;       /* elements */
	long long firstUnit;  /* CUDA only: units (rowUnits in multi_tensor_apply.cuh) of the rows before this one */
	float learnRate;      /* optimizer learnRate times the variable's multiplier, already in float32 */
	int unused;           /* padding, spelled out so both sides agree */
}
TensorEntry;

/* A row for the other flavours (RMSProp options, RMSPropGraves): up to three state tensors, whose storage type
 * may differ from the parameters' (stateDtype=float32 for float16 parameters). 64 bytes a row. */
typedef struct
{
	void *param;
	const void *grad;
	void *ms;
	void *mg;          /* NULL unless centered */
	void *mom;         /* NULL unless momentum */
	long long size;
	long long firstUnit;  /* CUDA only: units of the rows before this one (FLAVOUR_SPAN elements each, rmsprop.cu) */
	float learnRate;      /* optimizer learnRate times the variable's multiplier */
	float momentum;       /* optimizer momentum times the variable's momRate */
}
FlavourEntry;

/* A row for 8-bit state (stateBits=8, any flavour): each state is 8-bit codes, one per element, and one float32 scale
 * per QUANT8_BLOCK elements (kernels/quantize8.h); a state's pointers are NULL when the flavour has no such state.
 * The row's first element starts a block. 96 bytes a row. */
typedef struct
{
	void *param;
	const void *grad;
	unsigned char *codes[3];   /* ms, mg, mom */
	float *scales[3];
	long long size;            /* elements */
	long long blocks;          /* ceil(size / QUANT8_BLOCK) */
	long long firstUnit;       /* CUDA only: blocks of the rows before this one (a unit is one block, one warp's work) */
	float learnRate;
	float momentum;
}
Quant8Entry;

#endif
