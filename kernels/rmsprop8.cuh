/* CUDA kernels for 8-bit state (stateBits=8), every flavour, one pass. One warp takes one block of QUANT8_BLOCK
 * elements, 8 per lane: params and grads come in 128-bit packets (two per lane for float32, one for 16-bit), codes
 * in one 64-bit word per state. After the update the block's new absolute maximum is reduced over the warp with
 * shuffles (as unsigned float bits: a NaN wins, as on the host), lane 0 stores the scale and every lane its codes.
 * The blocks of all rows are dealt to the warps in turn (visitRows), so many small tensors still spread over the
 * grid and a warp reads only the rows of its blocks.
 * Included by rmsprop.cu; the per-element math is rmsprop_update.h's and quantize8.h's.
 */
#ifndef PUZZLELIB_RMSPROP8_CUH
#define PUZZLELIB_RMSPROP8_CUH

#include "multi_tensor_apply.cuh"
#include "quantize8.h"
#include "rmsprop_update.h"

#define QUANT8_LANE 8  /* elements per lane: 32 lanes cover one block */
#define FULL_WARP 0xffffffffu

/* Up to 8 values of a lane: packets when the lane is full and its row aligned, else element by element. */
template <typename P>
__device__ __forceinline__ void loadLane(const P *src, int n, bool packets, bool readOnly, float *out)
{
	if (packets)
	{
		#pragma unroll
		for (int j = 0; j < QUANT8_LANE / Packet<P>::width; j++)
		{
			const uint4 *packet = (const uint4 *)src + j;
			HOST_SHIM_TRACE(packets);
			Packet<P>::unpack(readOnly ? __ldg(packet) : loadPacket(packet), out + j * Packet<P>::width);
		}
		return;
	}
	#pragma unroll
	for (int j = 0; j < QUANT8_LANE; j++)
		out[j] = j < n ? Packet<P>::load(src[j]) : 0.0f;
}

template <typename P>
__device__ __forceinline__ void storeLane(P *dst, int n, bool packets, const float *in)
{
	if (packets)
	{
		#pragma unroll
		for (int j = 0; j < QUANT8_LANE / Packet<P>::width; j++)
			storePacket((uint4 *)dst + j, Packet<P>::pack(in + j * Packet<P>::width));
		return;
	}
	#pragma unroll
	for (int j = 0; j < QUANT8_LANE; j++)
		if (j < n)
			dst[j] = Packet<P>::store(in[j]);
}

/* A lane's codes of one state, decoded with the block's scale. */
__device__ __forceinline__ void decodeLane(const unsigned char *codes, float scale, int n, bool packets, int isSigned,
										   float *out)
{
	unsigned long long word = 0;
	if (packets)
	{
		HOST_SHIM_CHECK_ALIGNED(codes, 8, "code load");
		word = *(const unsigned long long *)codes;
	}
	else
		for (int j = 0; j < n; j++)
			word |= (unsigned long long)codes[j] << (8 * j);

	#pragma unroll
	for (int j = 0; j < QUANT8_LANE; j++)
		out[j] = quant8Decode((unsigned int)(word >> (8 * j)) & 0xffu, scale, isSigned);
}

/* The block's largest |value| over the warp; each lane gives its first n values. */
__device__ __forceinline__ float warpAbsMax(const float *values, int n)
{
	unsigned int bits = 0;
	#pragma unroll
	for (int j = 0; j < QUANT8_LANE; j++)
		if (j < n)
			bits = max(bits, __float_as_uint(values[j]) & 0x7fffffffu);
	#pragma unroll
	for (int offset = 16; offset > 0; offset >>= 1)
		bits = max(bits, __shfl_xor_sync(FULL_WARP, bits, offset));
	return __uint_as_float(bits);
}

/* Re-encodes a lane's new values with the block's new scale; lane 0 stores the scale. */
__device__ __forceinline__ void encodeLane(const float *values, int n, bool packets, int isSigned, int lane,
										   unsigned char *codes, float *scale)
{
	float absmax = warpAbsMax(values, n), inverse = quant8Inverse(absmax, isSigned);
	unsigned long long word = 0;
	#pragma unroll
	for (int j = 0; j < QUANT8_LANE; j++)
		word |= (unsigned long long)quant8Encode(values[j], inverse, isSigned) << (8 * j);

	if (packets)
		*(unsigned long long *)codes = word;
	else
		for (int j = 0; j < n; j++)
			codes[j] = (unsigned char)(word >> (8 * j));
	if (lane == 0)
		*scale = quant8Scale(absmax, isSigned);
}

/* Whether a row's lanes may take packets: params and grads on 16 bytes, codes on 8 (NULL counts as aligned). */
__device__ __forceinline__ bool quant8Aligned(const Quant8Entry &e)
{
	bool aligned = (unsigned long long)e.param % 16 == 0 && (unsigned long long)e.grad % 16 == 0;
	for (int s = 0; s < 3; s++)
		aligned = aligned && (unsigned long long)e.codes[s] % 8 == 0;
	return aligned;
}

template <typename P>
__device__ __forceinline__ void quant8Block(const Quant8Entry &e, long long b, int lane, bool aligned, bool hasMg,
											bool hasMom, const RMSPropFlavour &f)
{
	long long lo = b * QUANT8_BLOCK + lane * QUANT8_LANE;
	int n = (int)max(0LL, min((long long)QUANT8_LANE, e.size - lo));
	bool packets = aligned && n == QUANT8_LANE;
	P *param = (P *)e.param + lo;
	const P *grad = (const P *)e.grad + lo;
	ASSUME_GLOBAL(param); ASSUME_GLOBAL(grad);

	/* the pointers of mg and mom are formed (and assumed global) only where they exist: arithmetic on NULL is
	   undefined, and __isGlobal(NULL) is false, so an assume on it would let the compiler fold the null tests */
	unsigned char *codes[3] = {e.codes[0] + lo, NULL, NULL};
	float *scales[3] = {e.scales[0] + b, NULL, NULL};
	ASSUME_GLOBAL(codes[0]); ASSUME_GLOBAL(scales[0]);

	float p[QUANT8_LANE], g[QUANT8_LANE], m[QUANT8_LANE], a[QUANT8_LANE], d[QUANT8_LANE];
	loadLane<P>(param, n, packets, false, p);
	loadLane<P>(grad, n, packets, true, g);
	decodeLane(codes[0], *scales[0], n, packets, QUANT8_SIGNED(0), m);
	if (hasMg)
	{
		codes[1] = e.codes[1] + lo, scales[1] = e.scales[1] + b;
		ASSUME_GLOBAL(codes[1]); ASSUME_GLOBAL(scales[1]);
		decodeLane(codes[1], *scales[1], n, packets, QUANT8_SIGNED(1), a);
	}
	if (hasMom)
	{
		codes[2] = e.codes[2] + lo, scales[2] = e.scales[2] + b;
		ASSUME_GLOBAL(codes[2]); ASSUME_GLOBAL(scales[2]);
		decodeLane(codes[2], *scales[2], n, packets, QUANT8_SIGNED(2), d);
	}

	#pragma unroll
	for (int j = 0; j < QUANT8_LANE; j++)
	{
		float aj = hasMg ? a[j] : 0.0f, dj = hasMom ? d[j] : 0.0f;
		rmspropFlavourStep(&p[j], g[j], &m[j], &aj, &dj, e.learnRate, e.momentum, &f);
		a[j] = aj, d[j] = dj;
	}

	storeLane<P>(param, n, packets, p);
	encodeLane(m, n, packets, QUANT8_SIGNED(0), lane, codes[0], scales[0]);
	if (hasMg)
	{
		ASSUME_GLOBAL(codes[1]); ASSUME_GLOBAL(scales[1]);
		encodeLane(a, n, packets, QUANT8_SIGNED(1), lane, codes[1], scales[1]);
	}
	if (hasMom)
	{
		ASSUME_GLOBAL(codes[2]); ASSUME_GLOBAL(scales[2]);
		encodeLane(d, n, packets, QUANT8_SIGNED(2), lane, codes[2], scales[2]);
	}
}

/* One warp a block of QUANT8_BLOCK elements: a unit of visitRows is one block, dealt to the warps in turn. */
template <typename P>
__device__ __forceinline__ void quant8Rows(const Quant8Entry *table, int count, const RMSPropFlavour &flavour)
{
	long long warps = (long long)gridDim.x * blockDim.x / 32;
	long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / 32;
	int lane = threadIdx.x % 32;
	auto units = [](const Quant8Entry &e) { return e.blocks; };

	visitRows(table, count, warp, units, [&](const Quant8Entry &e, long long b, long long n) {
		bool hasMg = e.codes[1] != NULL, hasMom = e.codes[2] != NULL, aligned = quant8Aligned(e);
		RMSPropFlavour f = quant8Flavour(flavour, hasMg, hasMom);
		for (; b < n; b += warps)
			quant8Block<P>(e, b, lane, aligned, hasMg, hasMom, f);
		return b;
	});
}

#define QUANT8_KERNEL(NAME, P) \
extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK) \
NAME(const Quant8Entry *table, int count, RMSPropFlavour f) \
{ \
	quant8Rows<P>(table, count, f); \
} \
HOST_SHIM_WARP_KERNEL(NAME)

QUANT8_KERNEL(quant8Float32, float)
QUANT8_KERNEL(quant8Float16, __half)
QUANT8_KERNEL(quant8Bfloat16, __nv_bfloat16)


#endif
