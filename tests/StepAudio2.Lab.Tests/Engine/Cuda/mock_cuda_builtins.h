// Declarations of the CUDA built-ins the NVRTC source of CudaKernels uses, for a host C++ compiler: with them g++ checks
// the kernels' syntax and types on a machine without CUDA (CudaKernelSyntaxTests). Not a CUDA implementation.
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static
#define DYNAMIC_SHARED(T, name) T* name = nullptr
struct float4 { float x, y, z, w; };
struct uint4 { unsigned x, y, z, w; };
struct float2 { float x, y; };
float4 make_float4(float, float, float, float);
uint4 make_uint4(unsigned, unsigned, unsigned, unsigned);
void __threadfence();
struct dim3 { unsigned x, y, z; };
extern dim3 threadIdx, blockIdx, blockDim, gridDim;
float __int_as_float(int); float __uint_as_float(unsigned); unsigned __float_as_uint(float); int __float_as_int(float);
template <class T> T __ldg(const T*);
template <class T> T __ldcg(const T*);
float __shfl_xor_sync(unsigned, float, int, int = 32); int __shfl_xor_sync(unsigned, int, int, int = 32);
double __shfl_xor_sync(unsigned, double, int, int = 32);
float __shfl_down_sync(unsigned, float, int, int = 32);
void __syncthreads(); void __syncwarp(unsigned = 0xffffffff);
float atomicAdd(float*, float); int atomicAdd(int*, int);
float expf(float); float logf(float); float sqrtf(float); float rsqrtf(float); float tanhf(float); float erff(float); float sinf(float); float cosf(float);
float fabsf(float); float fmaxf(float, float); float fminf(float, float); float powf(float, float); float floorf(float); float rintf(float); float fmaf(float, float, float);
float log1pf(float); float expm1f(float); float ceilf(float); float truncf(float); float roundf(float); float exp2f(float); float log2f(float); float atan2f(float, float);
double exp(double); double log(double); double sqrt(double); double fabs(double); double floor(double);
int isnan(float); int isinf(float); int signbit(float); int isfinite(float);
int min(int, int); int max(int, int); long long min(long long, long long); long long max(long long, long long);
unsigned min(unsigned, unsigned); unsigned max(unsigned, unsigned);
float __fdividef(float, float);
unsigned __byte_perm(unsigned, unsigned, unsigned);
int __clz(int); int __ffs(int);
float __fmul_rn(float, float); float __fadd_rn(float, float); float __fsub_rn(float, float); float __fdiv_rn(float, float); float __fmaf_rn(float, float, float);
double __dadd_rn(double, double); double __dmul_rn(double, double);
double fmax(double, double); double fmin(double, double);
