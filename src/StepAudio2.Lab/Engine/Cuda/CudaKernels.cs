namespace StepAudio2.Lab.Engine.Cuda;

/// <summary>
/// The CUDA C source of every device kernel of <see cref="CudaBackend"/>, compiled by NVRTC at first use for the device's
/// architecture (<see cref="CudaCompiler"/>). No header is included (bf16/f16 conversions are written out), so NVRTC needs no
/// toolkit include folder. Each kernel mirrors the CPU backend's op of the same name (Engine/Cpu/CpuBackend.cs); float math
/// uses the precise functions (expf, erff, sinf …), never the <c>__</c> intrinsics, for parity with the CPU.
/// </summary>
public static class CudaKernels
{
    /// <summary>Environment variable choosing how many warps split K in the 4/8-bit decode GEMVs (1, 2, 4 or 8; default
    /// 2, the form the op checks ran on an H100; 1 / 2 / 4 timed 198.5 / 186.5 / 187.1 int4 tok/s in one call): a tuning
    /// knob, so one device call can time the variants side by side. The backend passes it to NVRTC as
    /// <c>-DQGEMV_SLICES</c> (part of the cubin cache key) and sizes its grids with the same value.</summary>
    public const string QGemvSlicesVariable = "STEPLAB_QGEMV_SLICES";

    private static int s_qgemvSlices;

    /// <summary>The variable's value, read on first use (not in a static initializer: a bad value is then an
    /// <see cref="ArgumentException"/> naming it, not a type-initialisation failure); every grid launch asks.</summary>
    public static int QGemvSlices => s_qgemvSlices != 0 ? s_qgemvSlices
        : s_qgemvSlices = ParseSlices(Environment.GetEnvironmentVariable(QGemvSlicesVariable));

    internal static int ParseSlices(string? v)
    {
        if (string.IsNullOrEmpty(v)) return 2;
        return int.TryParse(v, out int n) && n is 1 or 2 or 4 or 8 ? n
            : throw new ArgumentException($"{QGemvSlicesVariable}={v}: expected 1, 2, 4 or 8 (warps splitting K in the 4/8-bit GEMVs)");
    }

    /// <summary>Kernel names the backend launches; a test checks each is defined in <see cref="Source"/>.</summary>
    public static class Names
    {
        public const string Copy1 = "copy_strided_1", Copy2 = "copy_strided_2", Copy4 = "copy_strided_4", Copy8 = "copy_strided_8";
        public const string ToF32 = "to_f32_strided", F32ToBf16 = "f32_to_bf16";
        public const string Unary = "unary_f32", Binary = "binary_f32", BinarySame = "binary_same_f32", Scale = "scale_f32";
        public const string Softmax = "softmax_rows", LayerNorm = "layernorm_rows", RmsNorm = "rmsnorm_rows", MaskSoftmax = "mask_softmax_rows";
        public const string Take = "take_rows", Pad = "pad_f32", Reduce = "reduce_axis", Argmax = "argmax_rows";
        public const string Rope = "rope_f32", Cumsum = "cumsum_axis", Repeat = "repeat_axis", Where = "where_f32", Snake = "snake_f32";
        public const string AvgPool = "avgpool1d_f32", Im2col = "im2col_f32", ConvDirect = "conv1d_direct_f32", Col2im = "col2im_transpose_f32";
        public const string ChannelBias = "add_channel_bias", RowBias = "add_row_bias";
        public const string GemvBf16 = "gemv_bf16_vec", GemvBf16Scalar = "gemv_bf16_scalar", GemvBf16SwiGlu = "gemv_bf16_swiglu";
        public const string QGemv = "qgemv", QGemv4 = "qgemv4", QGemv8 = "qgemv8", Dequant = "dequant_rows", QPackLanes = "qpack_lanes", SbPack = "sb_pack";
        public const string QGemv4SwiGlu = "qgemv4_swiglu", QGemv8SwiGlu = "qgemv8_swiglu";
        public const string AddRmsNorm = "add_rmsnorm_rows", AttnDecode = "attn_decode", RopeAppend = "rope_append";
        public const string FillUniform = "fill_uniform";

        public static readonly string[] All =
        [
            Copy1, Copy2, Copy4, Copy8, ToF32, F32ToBf16, Unary, Binary, BinarySame, Scale, Softmax, LayerNorm, RmsNorm, MaskSoftmax,
            Take, Pad, Reduce, Argmax, Rope, Cumsum, Repeat, Where, Snake, AvgPool, Im2col, ConvDirect, Col2im, ChannelBias, RowBias,
            GemvBf16, GemvBf16Scalar, GemvBf16SwiGlu, QGemv, QGemv4, QGemv8, Dequant, QPackLanes, SbPack, QGemv4SwiGlu, QGemv8SwiGlu, AddRmsNorm,
            AttnDecode, RopeAppend, FillUniform,
        ];
    }

    /// <summary>Most dims a strided kernel takes (<c>MAXR</c> in the source; <see cref="StridedMeta"/> mirrors the struct).</summary>
    public const int MaxRank = 8;

    public const string Source = """
typedef unsigned short bf16_t;
typedef long long i64;
#define MAXR 8
// no math header under NVRTC without a toolkit: the two constants from their bit patterns
#define INFINITY __int_as_float(0x7f800000)
#define NAN __int_as_float(0x7fffffff)

// Shape plus up to three stride sets (elements), passed by value: the layout of StridedMeta in C#.
struct Strided { int rank; int pad_; i64 shape[MAXR]; i64 s0[MAXR]; i64 s1[MAXR]; i64 s2[MAXR]; };

__device__ __forceinline__ float bf2f(bf16_t h) { return __uint_as_float(((unsigned)h) << 16); }
__device__ __forceinline__ bf16_t f2bf(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16_t)((u >> 16) | 0x40u);   // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);                                            // round to nearest even
  return (bf16_t)(u >> 16);
}
__device__ __forceinline__ float h2f(unsigned short h) {
  unsigned s = ((unsigned)h & 0x8000u) << 16, e = ((unsigned)h >> 10) & 0x1fu, m = (unsigned)h & 0x3ffu;
  if (e == 0) { float v = (float)m * 5.9604644775390625e-8f; return s ? -v : v; }
  if (e == 31) return __uint_as_float(s | 0x7f800000u | (m << 13));
  return __uint_as_float(s | ((e + 112u) << 23) | (m << 13));
}
__device__ __forceinline__ void offsets3(const Strided& m, i64 i, i64& o0, i64& o1, i64& o2) {
  o0 = 0; o1 = 0; o2 = 0;
  for (int d = m.rank - 1; d >= 0; --d) {
    i64 c = i % m.shape[d]; i /= m.shape[d];
    o0 += c * m.s0[d]; o1 += c * m.s1[d]; o2 += c * m.s2[d];
  }
}
// dynamic shared memory (sized at launch); the host-compiler syntax check defines its own stand-in
#ifndef DYNAMIC_SHARED
#define DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif
#define GRID_LOOP(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

// Block-wide sum/max (blockDim a multiple of 32, at most 1024); every thread gets the result.
__device__ float block_sum(float v, float* sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  int w = threadIdx.x >> 5, l = threadIdx.x & 31;
  __syncthreads();
  if (l == 0) sh[w] = v;
  __syncthreads();
  int nw = blockDim.x >> 5;
  float r = 0.f;
  for (int k = 0; k < nw; ++k) r += sh[k];
  return r;
}
__device__ float block_max(float v, float* sh) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  int w = threadIdx.x >> 5, l = threadIdx.x & 31;
  __syncthreads();
  if (l == 0) sh[w] = v;
  __syncthreads();
  int nw = blockDim.x >> 5;
  float r = -INFINITY;
  for (int k = 0; k < nw; ++k) r = fmaxf(r, sh[k]);
  return r;
}

// ------------------------------------------------------------------ copies and casts
#define COPY_KERNEL(NAME, T) \
extern "C" __global__ void NAME(const T* __restrict__ src, T* __restrict__ dst, i64 n, const Strided m) { \
  GRID_LOOP(i, n) { i64 a, b, c; offsets3(m, i, a, b, c); dst[b] = src[a]; } }
COPY_KERNEL(copy_strided_1, unsigned char)
COPY_KERNEL(copy_strided_2, unsigned short)
COPY_KERNEL(copy_strided_4, unsigned int)
COPY_KERNEL(copy_strided_8, unsigned long long)

// dtype codes: the ordinals of StepAudio2.Lab.Tensors.DType
extern "C" __global__ void to_f32_strided(const void* __restrict__ src, int dtype, float* __restrict__ dst, i64 n, const Strided m) {
  GRID_LOOP(i, n) {
    i64 a, b, c; offsets3(m, i, a, b, c);
    float v;
    switch (dtype) {
      case 0: v = ((const float*)src)[a]; break;
      case 1: v = h2f(((const unsigned short*)src)[a]); break;
      case 2: v = bf2f(((const bf16_t*)src)[a]); break;
      case 3: v = (float)((const double*)src)[a]; break;
      case 4: v = (float)((const i64*)src)[a]; break;
      case 5: v = (float)((const int*)src)[a]; break;
      case 6: v = (float)((const short*)src)[a]; break;
      case 7: v = (float)((const signed char*)src)[a]; break;
      case 8: v = (float)((const unsigned char*)src)[a]; break;
      case 9: v = ((const unsigned char*)src)[a] != 0 ? 1.f : 0.f; break;
      default: v = (float)((const unsigned*)src)[a]; break;
    }
    dst[i] = v;
  }
}
extern "C" __global__ void f32_to_bf16(const float* __restrict__ x, bf16_t* __restrict__ y, i64 n) {
  GRID_LOOP(i, n) y[i] = f2bf(x[i]);
}

// ------------------------------------------------------------------ element-wise
// op codes: the ordinals of UnaryOp; 100 = clamp(alpha, beta)
__device__ __forceinline__ float unary(int op, float x, float alpha, float beta) {
  switch (op) {
    case 0: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case 1: { float u = 0.7978845608028654f * (x + (x * x * x) * 0.044715f); return 0.5f * x * (1.f + tanhf(u)); }
    case 2: return x * (1.f / (1.f + expf(-x)));
    case 3: return x > 0.f ? x : 0.f;
    case 4: return x >= 0.f ? x : alpha * x;
    case 5: return x > 0.f ? x : alpha * (expf(x) - 1.f);
    case 6: { float sp = x > 20.f ? x : logf(1.f + expf(x)); return x * tanhf(sp); }
    case 7: return tanhf(x);
    case 8: return expf(x);
    case 9: return logf(x);
    case 10: return sinf(x);
    case 11: return cosf(x);
    case 12: return fabsf(x);
    case 13: return -x;
    case 14: return 1.f / (1.f + expf(-x));
    case 15: return sqrtf(x);
    case 16: return x * x;
    case 100: return fminf(fmaxf(x, alpha), beta);
    default: return x;
  }
}
extern "C" __global__ void unary_f32(const float* __restrict__ x, float* __restrict__ y, i64 n, int op, float alpha, float beta) {
  GRID_LOOP(i, n) y[i] = unary(op, x[i], alpha, beta);
}
// op codes: the ordinals of BinaryOp
__device__ __forceinline__ float binary(int op, float a, float b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return (isnan(a) || isnan(b)) ? NAN : fmaxf(a, b);
    default: return (isnan(a) || isnan(b)) ? NAN : fminf(a, b);
  }
}
extern "C" __global__ void binary_same_f32(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y, i64 n, int op) {
  GRID_LOOP(i, n) y[i] = binary(op, a[i], b[i]);
}
// general broadcasting: s0 = a's strides, s1 = b's strides (0 on broadcast axes), output contiguous
extern "C" __global__ void binary_f32(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y, i64 n, int op, const Strided m) {
  GRID_LOOP(i, n) { i64 oa, ob, oc; offsets3(m, i, oa, ob, oc); y[i] = binary(op, a[oa], b[ob]); }
}
extern "C" __global__ void scale_f32(const float* __restrict__ x, float* __restrict__ y, i64 n, float s, float t) {
  // two roundings, as the CPU's Multiply then Add
  GRID_LOOP(i, n) { float v = __fmul_rn(x[i], s); y[i] = t != 0.f ? __fadd_rn(v, t) : v; }
}
// cond/a/b broadcast through s0/s1/s2; cond is f32 (≠ 0 is true)
extern "C" __global__ void where_f32(const float* __restrict__ c, const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y, i64 n, const Strided m) {
  GRID_LOOP(i, n) { i64 oc, oa, ob; offsets3(m, i, oc, oa, ob); y[i] = c[oc] != 0.f ? a[oa] : b[ob]; }
}
// HiFT/BigVGAN Snake: x + 1/(α + 1e-9)·sin²(α·x), α per channel of [B, C, T]
extern "C" __global__ void snake_f32(const float* __restrict__ x, const float* __restrict__ alpha, float* __restrict__ y, i64 n, int C, int T) {
  GRID_LOOP(i, n) {
    // the official float order (αx, sin, square, times the reciprocal, plus x) with no fused multiply-add
    float a = alpha[(i / T) % C], v = x[i], s = sinf(__fmul_rn(a, v));
    y[i] = __fadd_rn(v, __fmul_rn(__fmul_rn(s, s), 1.f / (a + 1e-9f)));
  }
}

// ------------------------------------------------------------------ rows: softmax, norms
// Softmax of one row of n values by the whole block (out may be in): out = e^(in − max), then ·1/Σ when normalise;
// the row's max and Σ e are returned to every thread.
__device__ void block_softmax(const float* in, float* out, int n, float* sh, bool normalise, float& mx, float& sum) {
  mx = -INFINITY;
  for (int j = threadIdx.x; j < n; j += blockDim.x) mx = fmaxf(mx, in[j]);
  mx = block_max(mx, sh);
  sum = 0.f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) { float e = expf(in[j] - mx); out[j] = e; sum += e; }
  sum = block_sum(sum, sh);
  if (!normalise) return;
  float inv = 1.f / sum;
  for (int j = threadIdx.x; j < n; j += blockDim.x) out[j] *= inv;
}
extern "C" __global__ void softmax_rows(const float* __restrict__ x, float* __restrict__ y, int d) {
  __shared__ float sh[32];
  float mx, sum;
  block_softmax(x + (i64)blockIdx.x * d, y + (i64)blockIdx.x * d, d, sh, true, mx, sum);
}
extern "C" __global__ void layernorm_rows(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b, float* __restrict__ y, int d, float eps) {
  __shared__ float sh[32];
  const float* r = x + (i64)blockIdx.x * d; float* o = y + (i64)blockIdx.x * d;
  float s = 0.f;
  for (int j = threadIdx.x; j < d; j += blockDim.x) s += r[j];
  float mean = block_sum(s, sh) / d;
  float v = 0.f;
  for (int j = threadIdx.x; j < d; j += blockDim.x) { float c = r[j] - mean; v += c * c; }
  float var = block_sum(v, sh) / d;
  float rstd = 1.f / sqrtf(var + eps);
  for (int j = threadIdx.x; j < d; j += blockDim.x) {
    float t = (r[j] - mean) * rstd;
    if (w) t *= w[j];
    if (b) t += b[j];
    o[j] = t;
  }
}
extern "C" __global__ void rmsnorm_rows(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y, int d, float eps) {
  __shared__ float sh[32];
  const float* r = x + (i64)blockIdx.x * d; float* o = y + (i64)blockIdx.x * d;
  float s = 0.f;
  for (int j = threadIdx.x; j < d; j += blockDim.x) s += r[j] * r[j];
  float scale = 1.f / sqrtf(block_sum(s, sh) / d + eps);
  for (int j = threadIdx.x; j < d; j += blockDim.x) o[j] = (r[j] * scale) * w[j];
}
// x + r and RMSNorm of it in one pass (a decoder's residual add before its next norm): sum = a + b, y = rmsnorm(sum)·w,
// the arithmetic of binary add then rmsnorm_rows. One block per row; a row of up to 8·blockDim values stays in
// registers between the two passes (the sum is not read back from memory).
extern "C" __global__ void add_rmsnorm_rows(const float* __restrict__ a, const float* __restrict__ b, float* sum, const float* __restrict__ w,
                                            float* __restrict__ y, int d, float eps) {
  __shared__ float sh[32];
  i64 base = (i64)blockIdx.x * d;
  float s = 0.f;
  if (d <= 8 * (int)blockDim.x) {
    float v[8], wv[8];
    #pragma unroll
    for (int t = 0; t < 8; ++t) {
      int j = threadIdx.x + t * blockDim.x;
      float x = 0.f;
      wv[t] = 0.f;
      if (j < d) { x = a[base + j] + b[base + j]; wv[t] = w[j]; sum[base + j] = x; s += x * x; }
      v[t] = x;
    }
    float scale = 1.f / sqrtf(block_sum(s, sh) / d + eps);
    #pragma unroll
    for (int t = 0; t < 8; ++t) {
      int j = threadIdx.x + t * blockDim.x;
      if (j < d) y[base + j] = (v[t] * scale) * wv[t];
    }
    return;
  }
  for (int j = threadIdx.x; j < d; j += blockDim.x) { float v = a[base + j] + b[base + j]; sum[base + j] = v; s += v * v; }
  float scale = 1.f / sqrtf(block_sum(s, sh) / d + eps);
  for (int j = threadIdx.x; j < d; j += blockDim.x) y[base + j] = (sum[base + j] * scale) * w[j];
}
// Attention scores [B, Hq, Tq, Tk] in place: ·scale, + mask (strides s0 over shape [B, Hq, Tq, Tk]), causal (keys after
// i + causalOffset masked), copied pre-softmax to scoresOut when given, then softmax. One block per row. A row of up
// to 8·blockDim scores stays in registers: one read and one write of the scores (the three passes through memory of
// the general loop below were a third of the full-size encoder's GPU time on an H100).
extern "C" __global__ void mask_softmax_rows(float* __restrict__ s, const float* __restrict__ mask, float* __restrict__ scoresOut,
                                             int hq, int tq, int tk, float scale, int causal, int causalOffset, const Strided m) {
  __shared__ float sh[32];
  i64 row = blockIdx.x;
  int i = (int)(row % tq), h = (int)((row / tq) % hq), bi = (int)(row / ((i64)tq * hq));
  float* r = s + row * tk;
  i64 mo = mask ? (i64)bi * m.s0[0] + (i64)h * m.s0[1] + (i64)i * m.s0[2] : 0;
  if (tk <= 8 * (int)blockDim.x) {
    float v[8];
    float mx = -INFINITY;
    #pragma unroll
    for (int t = 0; t < 8; ++t) {
      int j = threadIdx.x + t * blockDim.x;
      float x = -INFINITY;
      if (j < tk) {
        x = r[j];
        if (scale != 1.f) x *= scale;
        if (mask) x += mask[mo + (i64)j * m.s0[3]];
        if (causal && j > i + causalOffset) x = -INFINITY;
        if (scoresOut) scoresOut[row * tk + j] = x;
        mx = fmaxf(mx, x);
      }
      v[t] = x;
    }
    mx = block_max(mx, sh);
    float sum = 0.f;
    #pragma unroll
    for (int t = 0; t < 8; ++t) {
      int j = threadIdx.x + t * blockDim.x;
      if (j < tk) { float e = expf(v[t] - mx); v[t] = e; sum += e; }
    }
    float inv = 1.f / block_sum(sum, sh);
    #pragma unroll
    for (int t = 0; t < 8; ++t) {
      int j = threadIdx.x + t * blockDim.x;
      if (j < tk) r[j] = v[t] * inv;
    }
    return;
  }
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < tk; j += blockDim.x) {
    float v = r[j];
    if (scale != 1.f) v *= scale;
    if (mask) v += mask[mo + (i64)j * m.s0[3]];
    if (causal && j > i + causalOffset) v = -INFINITY;
    r[j] = v;
    if (scoresOut) scoresOut[row * tk + j] = v;
    mx = fmaxf(mx, v);
  }
  mx = block_max(mx, sh);
  float sum = 0.f;
  for (int j = threadIdx.x; j < tk; j += blockDim.x) { float e = expf(r[j] - mx); r[j] = e; sum += e; }
  float inv = 1.f / block_sum(sum, sh);
  for (int j = threadIdx.x; j < tk; j += blockDim.x) r[j] *= inv;
}

// Attention of a few query rows (decoding: one new position per head) over a KV-cache view, with no scores matrix in
// memory and no GEMM launches. Block (row, split) takes keys [split·chunk, …) of query row `row` = (b·Hq + h)·Tq + i:
// one warp per key for q·k (lanes over d in float4s), softmax over the block's keys, then Σ p·V with the threads over
// d (and over key residues when d < blockDim). With one split the row is final (p normalised before ·V, as the CPU
// backend does); with several (split-K over a long cache), each writes its max, its sum and its unnormalised Σ e·V, and
// the row's last block joins them (counters: one int per row, zero between launches). K/V rows of d floats at element strides (kb, kh, kr) and (vb, vh, vr); causal: key j ≤ i + Tk − Tq.
// Dynamic shared memory: (d + chunk + blockDim) floats; d % 4 == 0 and d ≤ blockDim.
extern "C" __global__ void attn_decode(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                                       float* __restrict__ out, float* pm, float* pl, float* po, int* counters,
                                       int hq, int hkv, int tq, int tk, int d, i64 kb, i64 kh, i64 kr, i64 vb, i64 vh, i64 vr,
                                       float scale, int causal, int chunk) {
  DYNAMIC_SHARED(float, sm);
  __shared__ float red[32];
  int row = blockIdx.x, split = blockIdx.y, splits = gridDim.y;
  int i = row % tq, h = (row / tq) % hq, bi = row / (tq * hq), kvh = h / (hq / hkv);
  float* qs = sm; float* sc = sm + d; float* part = sc + chunk;
  for (int c = threadIdx.x; c < d; c += blockDim.x) qs[c] = q[(i64)row * d + c];
  int limit = causal ? min(tk, i + tk - tq + 1) : tk;
  int j0 = split * chunk, n = max(min(limit, j0 + chunk) - j0, 0);
  const float* kbase = k + bi * kb + kvh * kh;
  const float* vbase = v + bi * vb + kvh * vh;
  __syncthreads();
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  // four keys per warp at a time, their loads issued together (one key at a time left each warp waiting on one load)
  for (int j = warp; j < n; j += 4 * warps) {
    float s4[4];
    #pragma unroll
    for (int u = 0; u < 4; ++u) {
      int jj = j + u * warps;
      float s = 0.f;
      if (jj < n) {
        const float* kj = kbase + (i64)(j0 + jj) * kr;
        for (int c = lane * 4; c < d; c += 128) {
          float4 a = __ldg(reinterpret_cast<const float4*>(kj + c));
          s += a.x * qs[c] + a.y * qs[c + 1] + a.z * qs[c + 2] + a.w * qs[c + 3];
        }
      }
      s4[u] = s;
    }
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      #pragma unroll
      for (int u = 0; u < 4; ++u) s4[u] += __shfl_xor_sync(0xffffffffu, s4[u], o);
    }
    if (lane == 0) {
      #pragma unroll
      for (int u = 0; u < 4; ++u) if (j + u * warps < n) sc[j + u * warps] = s4[u] * scale;
    }
  }
  __syncthreads();
  float mx, sum;
  block_softmax(sc, sc, n, red, splits == 1, mx, sum);
  __syncthreads();
  int parts = blockDim.x / d, c = threadIdx.x % d, p = threadIdx.x / d;
  if (p < parts) {
    // four independent accumulators: four V loads in flight per thread
    float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
    const float* vc = vbase + (i64)j0 * vr + c;
    int j = p;
    #pragma unroll 4
    for (; j + 3 * parts < n; j += 4 * parts) {
      float v0 = __ldg(vc + (i64)j * vr), v1 = __ldg(vc + (i64)(j + parts) * vr);
      float v2 = __ldg(vc + (i64)(j + 2 * parts) * vr), v3 = __ldg(vc + (i64)(j + 3 * parts) * vr);
      a0 += sc[j] * v0; a1 += sc[j + parts] * v1; a2 += sc[j + 2 * parts] * v2; a3 += sc[j + 3 * parts] * v3;
    }
    for (; j < n; j += parts) a0 += sc[j] * __ldg(vc + (i64)j * vr);
    part[p * d + c] = (a0 + a1) + (a2 + a3);
  }
  __syncthreads();
  if (threadIdx.x < d) {
    float o = 0.f;
    for (int r = 0; r < parts; ++r) o += part[r * d + threadIdx.x];
    if (splits == 1) out[(i64)row * d + threadIdx.x] = o;
    else po[((i64)row * splits + split) * d + threadIdx.x] = o;
  }
  if (splits == 1) return;
  if (threadIdx.x == 0) { pm[(i64)row * splits + split] = mx; pl[(i64)row * splits + split] = sum; }
  // the last block of the row to finish joins the splits (no second launch): o = Σ_s e^(m_s − M)·O_s / Σ_s e^(m_s − M)·l_s,
  // empty splits having m_s = −∞; its counter goes back to 0 for the next launch
  __shared__ int ticket;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) ticket = atomicAdd(counters + row, 1);
  __syncthreads();
  if (ticket != splits - 1) return;
  __threadfence();
  // thread t < splits (≤ blockDim, see the host) holds split t's weight e^(m_t − M); the weights, divided by their
  // l-weighted sum, wait in shared memory (part is free again) while the threads over d sum the partial outputs
  float mt = threadIdx.x < splits ? __ldcg(pm + (i64)row * splits + threadIdx.x) : -INFINITY;
  float M = block_max(mt, red);
  float wt = mt != -INFINITY ? expf(mt - M) : 0.f;
  float L = block_sum(threadIdx.x < splits ? wt * __ldcg(pl + (i64)row * splits + threadIdx.x) : 0.f, red);
  if (threadIdx.x < splits) part[threadIdx.x] = wt / L;
  __syncthreads();
  for (int c2 = threadIdx.x; c2 < d; c2 += blockDim.x) {
    const float* pc = po + (i64)row * splits * d + c2;
    float o0 = 0.f, o1 = 0.f;
    int t = 0;
    #pragma unroll 4
    for (; t + 1 < splits; t += 2) { o0 += part[t] * __ldcg(pc + (i64)t * d); o1 += part[t + 1] * __ldcg(pc + (i64)(t + 1) * d); }
    if (t < splits) o0 += part[t] * __ldcg(pc + (i64)t * d);
    out[(i64)row * d + c2] = o0 + o1;
  }
  if (threadIdx.x == 0) counters[row] = 0;
}
// ------------------------------------------------------------------ indexing and shape
extern "C" __global__ void take_rows(const void* __restrict__ table, int dtype, const int* __restrict__ ids, float* __restrict__ y, int n, int d) {
  GRID_LOOP(i, (i64)n * d) {
    i64 row = ids[i / d], col = i % d;
    y[i] = dtype == 2 ? bf2f(((const bf16_t*)table)[row * d + col]) : ((const float*)table)[row * d + col];
  }
}
// shape = output shape; s0 = source strides; s1 = pads before; s2 = source sizes. mode: 0 constant, 1 reflect, 2 replicate
extern "C" __global__ void pad_f32(const float* __restrict__ x, float* __restrict__ y, i64 n, int mode, float value, const Strided m) {
  GRID_LOOP(i, n) {
    i64 rem = i, src = 0; bool inside = true;
    for (int d = m.rank - 1; d >= 0; --d) {
      i64 c = rem % m.shape[d]; rem /= m.shape[d];
      i64 k = c - m.s1[d], size = m.s2[d];
      if (k < 0 || k >= size) {
        if (mode == 0) inside = false;
        else if (mode == 1) k = k < 0 ? -k : 2 * (size - 1) - k;
        else k = k < 0 ? 0 : size - 1;
      }
      src += k * m.s0[d];
    }
    y[i] = inside ? x[src] : value;
  }
}
// op: 0 sum, 1 mean, 2 max, 3 min over the middle axis of [outer, n, inner]; double accumulation as the CPU
extern "C" __global__ void reduce_axis(const float* __restrict__ x, float* __restrict__ y, i64 outer, int n, i64 inner, int op) {
  GRID_LOOP(t, outer * inner) {
    i64 o = t / inner, in = t % inner;
    double acc = op == 2 ? -INFINITY : op == 3 ? INFINITY : 0.0;
    for (int j = 0; j < n; ++j) {
      double v = x[(o * n + j) * inner + in];
      acc = op == 2 ? fmax(acc, v) : op == 3 ? fmin(acc, v) : acc + v;
    }
    if (op == 1) acc /= n;
    y[t] = (float)acc;
  }
}
// first index of the maximum of each row (torch.argmax)
extern "C" __global__ void argmax_rows(const float* __restrict__ x, int* __restrict__ out, int d) {
  __shared__ float sv[1024]; __shared__ int si[1024];
  const float* r = x + (i64)blockIdx.x * d;
  float best = -INFINITY; int bi = 0x7fffffff;
  for (int j = threadIdx.x; j < d; j += blockDim.x) { float v = r[j]; if (v > best || bi == 0x7fffffff) { best = v; bi = j; } }
  sv[threadIdx.x] = best; si[threadIdx.x] = bi;
  __syncthreads();
  for (int s = blockDim.x >> 1; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      float v = sv[threadIdx.x + s]; int k = si[threadIdx.x + s];
      if (k != 0x7fffffff && (v > sv[threadIdx.x] || (v == sv[threadIdx.x] && k < si[threadIdx.x]) || si[threadIdx.x] == 0x7fffffff)) { sv[threadIdx.x] = v; si[threadIdx.x] = k; }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = si[0] == 0x7fffffff ? 0 : si[0];
}
// element j of a rotate-half RoPE'd row (D values) at position pos, with cos/sin tables [positions, D/2] made on the
// host exactly as the CPU backend's (HF Qwen2's float32 inv_freq and angle); products and sums rounded separately as on
// the CPU
__device__ __forceinline__ float rope_at(const float* __restrict__ row, int j, int D, i64 pos, const float* __restrict__ cosT, const float* __restrict__ sinT) {
  int half = D / 2, f = j % half;
  i64 at = pos * half + f;
  float c = cosT[at], s = sinT[at];
  return j < half ? __fsub_rn(__fmul_rn(row[j], c), __fmul_rn(row[j + half], s)) : __fadd_rn(__fmul_rn(row[j], c), __fmul_rn(row[j - half], s));
}
// RoPE on contiguous [rows, T, D]
extern "C" __global__ void rope_f32(const float* __restrict__ x, float* __restrict__ y, const float* __restrict__ cosT, const float* __restrict__ sinT,
                                    i64 n, int T, int D, int offset) {
  GRID_LOOP(i, n) {
    int j = (int)(i % D); i64 t = (i / D) % T;
    y[i] = rope_at(x + (i - j), j, D, (i64)offset + t, cosT, sinT);
  }
}
// A decoding step's RoPE and KV-cache append in one launch: q rows [n, H·D] → qo [H, n, D] rotated; k rows [n, Hkv·D]
// rotated and v rows copied into cache rows start..start+n−1 of each KV head (element strides kh/kr, vh/vr; batch 1).
extern "C" __global__ void rope_append(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                                       float* __restrict__ qo, float* __restrict__ kc, float* __restrict__ vc,
                                       const float* __restrict__ cosT, const float* __restrict__ sinT,
                                       int n, int H, int Hkv, int D, int start, i64 kh, i64 kr, i64 vh, i64 vr) {
  i64 nq = (i64)n * H * D, nk = (i64)n * Hkv * D;
  GRID_LOOP(i, nq + 2 * nk) {
    i64 e = i < nq ? i : i < nq + nk ? i - nq : i - nq - nk;
    int heads = i < nq ? H : Hkv;
    int j = (int)(e % D); i64 th = e / D; int h = (int)(th % heads); i64 t = th / heads;
    if (i < nq) qo[((i64)h * n + t) * D + j] = rope_at(q + th * D, j, D, start + t, cosT, sinT);
    else if (i < nq + nk) kc[h * kh + (start + t) * kr + j] = rope_at(k + th * D, j, D, start + t, cosT, sinT);
    else vc[h * vh + (start + t) * vr + j] = v[e];
  }
}
extern "C" __global__ void cumsum_axis(const float* __restrict__ x, float* __restrict__ y, i64 outer, int n, i64 inner) {
  GRID_LOOP(t, outer * inner) {
    // double accumulation rounded per element, as PyTorch's CPU cumsum
    i64 o = t / inner, in = t % inner; double acc = 0.0;
    for (int j = 0; j < n; ++j) { i64 k = (o * n + j) * inner + in; acc += x[k]; y[k] = (float)acc; }
  }
}
extern "C" __global__ void repeat_axis(const float* __restrict__ x, float* __restrict__ y, i64 outer, int n, i64 inner, int repeats) {
  i64 total = outer * n * repeats * inner;
  GRID_LOOP(i, total) {
    i64 in = i % inner, j = (i / inner) % ((i64)n * repeats), o = i / (inner * n * repeats);
    y[i] = x[(o * n + j / repeats) * inner + in];
  }
}

// ------------------------------------------------------------------ convolutions
extern "C" __global__ void avgpool1d_f32(const float* __restrict__ x, float* __restrict__ y, i64 rows, int t, int tout, int k, int stride) {
  GRID_LOOP(i, rows * tout) {
    i64 r = i / tout; int o = (int)(i % tout); float s = 0.f;
    for (int j = 0; j < k; ++j) s += x[r * t + (i64)o * stride + j];
    y[i] = s / k;
  }
}
// cols [B, C·K, Tout]: cols[b, c·K + k, to] = x[b, c, to·stride + k·dil − pad] (0 outside)
extern "C" __global__ void im2col_f32(const float* __restrict__ x, float* __restrict__ cols, int B, int C, int T, int K, int tout, int stride, int pad, int dil) {
  i64 n = (i64)B * C * K * tout;
  GRID_LOOP(i, n) {
    int to = (int)(i % tout); i64 r = i / tout; int k = (int)(r % K); r /= K; int c = (int)(r % C); int b = (int)(r / C);
    int ti = to * stride + k * dil - pad;
    cols[i] = (ti >= 0 && ti < T) ? x[((i64)b * C + c) * T + ti] : 0.f;
  }
}
// grouped (depthwise) conv1d, one thread per output element
extern "C" __global__ void conv1d_direct_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias, float* __restrict__ y,
                                             int B, int Cin, int T, int Cout, int K, int tout, int stride, int pad, int dil, int groups) {
  int cinG = Cin / groups, coutG = Cout / groups;
  GRID_LOOP(i, (i64)B * Cout * tout) {
    int to = (int)(i % tout); int co = (int)((i / tout) % Cout); int b = (int)(i / ((i64)tout * Cout));
    int g = co / coutG; float acc = 0.f;
    for (int ci = 0; ci < cinG; ++ci) {
      const float* xr = x + ((i64)b * Cin + g * cinG + ci) * T; const float* wr = w + ((i64)co * cinG + ci) * K;
      for (int k = 0; k < K; ++k) { int ti = to * stride + k * dil - pad; if (ti >= 0 && ti < T) acc += xr[ti] * wr[k]; }
    }
    y[i] = bias ? acc + bias[co] : acc;
  }
}
// conv-transpose gather: y[b, co, to] = bias + Σ cols[b, ti, co·K + k] over to = ti·stride + k·dil − pad
extern "C" __global__ void col2im_transpose_f32(const float* __restrict__ cols, const float* __restrict__ bias, float* __restrict__ y,
                                                int B, int T, int Cout, int K, int tout, int stride, int pad, int dil) {
  GRID_LOOP(i, (i64)B * Cout * tout) {
    int to = (int)(i % tout); int co = (int)((i / tout) % Cout); int b = (int)(i / ((i64)tout * Cout));
    float acc = bias ? bias[co] : 0.f;
    for (int k = 0; k < K; ++k) {
      int num = to + pad - k * dil;
      if (num < 0 || num % stride != 0) continue;
      int ti = num / stride;
      if (ti < T) acc += cols[((i64)b * T + ti) * ((i64)Cout * K) + (i64)co * K + k];
    }
    y[i] = acc;
  }
}
extern "C" __global__ void add_channel_bias(float* __restrict__ y, const float* __restrict__ bias, i64 n, int C, int T) {
  GRID_LOOP(i, n) y[i] += bias[(i / T) % C];
}
extern "C" __global__ void add_row_bias(float* __restrict__ y, const float* __restrict__ bias, i64 n, int N) {
  GRID_LOOP(i, n) y[i] += bias[i % N];
}

// ------------------------------------------------------------------ GEMV for one token (decode): bandwidth-bound
// y[o] = Σ_k W[o,k]·x[k] (+ bias) with W bf16 [N, K] row-major, x f32; 16-byte weight loads (K % 8 == 0).
// eight bf16 weights (one 16-byte load) times eight x values (two float4s)
__device__ __forceinline__ float dot8_bf16x(uint4 a, float4 b0, float4 b1) {
  float s = __uint_as_float(a.x << 16) * b0.x + __uint_as_float(a.x & 0xffff0000u) * b0.y;
  s += __uint_as_float(a.y << 16) * b0.z + __uint_as_float(a.y & 0xffff0000u) * b0.w;
  s += __uint_as_float(a.z << 16) * b1.x + __uint_as_float(a.z & 0xffff0000u) * b1.y;
  s += __uint_as_float(a.w << 16) * b1.z + __uint_as_float(a.w & 0xffff0000u) * b1.w;
  return s;
}
// Σ_k W_r[k]·x[k] for two rows r = a, b: slice `slice` of `slices` of the row's n8 groups of eight (group j goes to
// slice (j / 32) % slices), summed over the warp (every lane gets both). The x loads are shared by the two rows and
// four 16-byte weight loads are in flight per lane before any arithmetic (one at a time left the weight stream at
// ~55 % of the bandwidth on an H100 at the 7B decoder's shapes).
__device__ __forceinline__ void gemv_bf16_rows2(const uint4* __restrict__ wa, const uint4* __restrict__ wb, const float4* __restrict__ x4,
                                                int n8, int lane, int slice, int slices, float& outA, float& outB) {
  float a0 = 0.f, a1 = 0.f, b0 = 0.f, b1 = 0.f;
  int step = 32 * slices, j = lane + 32 * slice;
  for (; j + step < n8; j += 2 * step) {
    int j2 = j + step;
    uint4 p0 = __ldg(wa + j), p1 = __ldg(wa + j2), q0 = __ldg(wb + j), q1 = __ldg(wb + j2);
    float4 x0 = __ldg(x4 + 2 * j), x1 = __ldg(x4 + 2 * j + 1), x2 = __ldg(x4 + 2 * j2), x3 = __ldg(x4 + 2 * j2 + 1);
    a0 += dot8_bf16x(p0, x0, x1); a1 += dot8_bf16x(p1, x2, x3);
    b0 += dot8_bf16x(q0, x0, x1); b1 += dot8_bf16x(q1, x2, x3);
  }
  if (j < n8) {
    uint4 p = __ldg(wa + j), q = __ldg(wb + j);
    float4 x0 = __ldg(x4 + 2 * j), x1 = __ldg(x4 + 2 * j + 1);
    a0 += dot8_bf16x(p, x0, x1); b0 += dot8_bf16x(q, x0, x1);
  }
  float sa = a0 + a1, sb = b0 + b1;
  for (int o = 16; o > 0; o >>= 1) { sa += __shfl_xor_sync(0xffffffffu, sa, o); sb += __shfl_xor_sync(0xffffffffu, sb, o); }
  outA = sa; outB = sb;
}
// The decode GEMVs' work split: a block of 256 threads = 8 warps = 2 tasks (a task: two rows, or a SwiGLU row's gate and
// up rows) × GEMV_SLICES warps, each warp one slice of K; the slices' sums meet in shared memory. Splitting K keeps
// enough loads in flight where a matrix has few rows for its width (down_proj: 3584 rows of 18944; one warp per row
// pair left ~14 warps on each of an H100's 132 SMs and the 4-bit kernel at ~0.5 TB/s).
#define GEMV_SLICES 4
template <int SLICES = GEMV_SLICES>
__device__ __forceinline__ void gemv_join(float va, float vb, float* sh, int warp, int lane, float& outA, float& outB) {
  if (lane == 0) { sh[2 * warp] = va; sh[2 * warp + 1] = vb; }
  __syncthreads();
  int first = warp - warp % SLICES;
  outA = 0.f; outB = 0.f;
  for (int t = 0; t < SLICES; ++t) { outA += sh[2 * (first + t)]; outB += sh[2 * (first + t) + 1]; }
}
// Global row index → (segment, row within it) for up to three matrices read with the same x (q/k/v projections in one
// launch); a plain GEMV passes n1 = n2 = 0. Returns -1 past the last row.
__device__ __forceinline__ int gemv_segment(int& row, int n0, int n1, int n2) {
  if (row < n0) return 0;
  row -= n0; if (row < n1) return 1;
  row -= n1; return row < n2 ? 2 : -1;
}
// y[row] = silu(g + bg[row]) · (u + bu[row]): unary SiLU's and binary multiply's arithmetic
__device__ __forceinline__ void swiglu_write(float g, float u, const float* bg, const float* bu, float* y, int row) {
  if (bg) g += bg[row];
  if (bu) u += bu[row];
  y[row] = unary(2, g, 0.f, 0.f) * u;
}
template <class T> __device__ __forceinline__ T pick3(int s, T a, T b, T c) { return s == 0 ? a : s == 1 ? b : c; }
// The two rows of GEMV task t (global rows 2t, 2t + 1): their segments and rows within them; a row past the end
// recomputes a valid one and is not written.
struct RowPair { int sa, sb, ra, rb; bool writeA, writeB; };
__device__ __forceinline__ RowPair row_pair(int task, int n0, int n1, int n2) {
  RowPair p;
  p.ra = 2 * task; p.rb = 2 * task + 1;
  p.sa = gemv_segment(p.ra, n0, n1, n2); p.sb = gemv_segment(p.rb, n0, n1, n2);
  p.writeA = p.sa >= 0; p.writeB = p.sb >= 0;
  if (!p.writeA) { p.sa = 0; p.ra = 0; }
  if (!p.writeB) { p.sb = p.sa; p.rb = p.ra; }
  return p;
}
// y[r] (+ bias[r]) of the pair's real rows, each into its segment's output
__device__ __forceinline__ void write_pair(const RowPair& p, float ya, float yb, const float* b0, const float* b1, const float* b2,
                                           float* y0, float* y1, float* y2) {
  if (p.writeA) { const float* b = pick3(p.sa, b0, b1, b2); pick3(p.sa, y0, y1, y2)[p.ra] = b ? ya + b[p.ra] : ya; }
  if (p.writeB) { const float* b = pick3(p.sb, b0, b1, b2); pick3(p.sb, y0, y1, y2)[p.rb] = b ? yb + b[p.rb] : yb; }
}
// y = x·Wᵀ (+ bias) for bf16 W [N, K] (K % 8 == 0, 16-byte aligned) and one f32 x row, over up to three matrices (rows
// mapped by gemv_segment); task t = global rows 2t, 2t + 1 (a row past the end recomputes a valid one, unwritten).
extern "C" __global__ void gemv_bf16_vec(const bf16_t* __restrict__ W0, const bf16_t* __restrict__ W1, const bf16_t* __restrict__ W2,
                                         const float* __restrict__ b0, const float* __restrict__ b1, const float* __restrict__ b2,
                                         float* __restrict__ y0, float* __restrict__ y1, float* __restrict__ y2,
                                         int n0, int n1, int n2, const float* __restrict__ x, int K) {
  __shared__ float sh[16];
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  RowPair p = row_pair(blockIdx.x * (8 / GEMV_SLICES) + warp / GEMV_SLICES, n0, n1, n2);
  const bf16_t* Wa = pick3(p.sa, W0, W1, W2);
  const bf16_t* Wb = pick3(p.sb, W0, W1, W2);
  float ya, yb;
  gemv_bf16_rows2(reinterpret_cast<const uint4*>(Wa + (i64)p.ra * K), reinterpret_cast<const uint4*>(Wb + (i64)p.rb * K),
                  reinterpret_cast<const float4*>(x), K / 8, lane, warp % GEMV_SLICES, GEMV_SLICES, ya, yb);
  gemv_join(ya, yb, sh, warp, lane, ya, yb);
  if (lane == 0 && warp % GEMV_SLICES == 0) write_pair(p, ya, yb, b0, b1, b2, y0, y1, y2);
}
// SwiGLU's first half for one token: y[r] = silu(Wg[r]·x + bg[r]) · (Wu[r]·x + bu[r]) — the gate and up rows as one
// task's two rows, then unary SiLU's and binary multiply's arithmetic.
extern "C" __global__ void gemv_bf16_swiglu(const bf16_t* __restrict__ Wg, const bf16_t* __restrict__ Wu, const float* __restrict__ bg,
                                            const float* __restrict__ bu, const float* __restrict__ x, float* __restrict__ y, int N, int K) {
  __shared__ float sh[16];
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int row = blockIdx.x * (8 / GEMV_SLICES) + warp / GEMV_SLICES;
  bool valid = row < N;
  if (!valid) row = 0;
  float g, u;
  gemv_bf16_rows2(reinterpret_cast<const uint4*>(Wg + (i64)row * K), reinterpret_cast<const uint4*>(Wu + (i64)row * K),
                  reinterpret_cast<const float4*>(x), K / 8, lane, warp % GEMV_SLICES, GEMV_SLICES, g, u);
  gemv_join(g, u, sh, warp, lane, g, u);
  if (valid && lane == 0 && warp % GEMV_SLICES == 0) swiglu_write(g, u, bg, bu, y, row);
}
extern "C" __global__ void gemv_bf16_scalar(const bf16_t* __restrict__ W, const float* __restrict__ x, const float* __restrict__ bias, float* __restrict__ y, int N, int K) {
  int row = (int)(((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  const bf16_t* w = W + (i64)row * K;
  float acc = 0.f;
  for (int j = lane; j < K; j += 32) acc += bf2f(w[j]) * x[j];
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) y[row] = bias ? acc + bias[row] : acc;
}

// ------------------------------------------------------------------ MLX affine quantized matrices
// Row r of W: a little-endian bit stream of b-bit codes (code k in bits k·b … k·b+b−1); w = scale[r, k/group]·q + bias[r, k/group].
// 32 consecutive codes fill exactly b words and lie in one group (group sizes are multiples of 32).
__device__ __forceinline__ unsigned code_at(const unsigned* __restrict__ words, int c, int bits) {
  int bit = c * bits, w = bit >> 5, sh = bit & 31;
  unsigned long long win = words[w];
  if (sh + bits > 32) win |= (unsigned long long)words[w + 1] << 32;
  return (unsigned)(win >> sh) & ((1u << bits) - 1u);
}
// one token: one warp per output row, each lane a chunk of 32 codes: Σ (s·q + b)·x = s·Σq·x + b·Σx
extern "C" __global__ void qgemv(const unsigned* __restrict__ Wq, const float* __restrict__ scales, const float* __restrict__ biases,
                                 const float* __restrict__ x, const float* __restrict__ bias, float* __restrict__ y, int N, int K, int bits, int group) {
  int row = (int)(((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  int wpr = K / 32 * bits, groups = K / group;
  const unsigned* wr = Wq + (i64)row * wpr;
  float acc = 0.f;
  for (int chunk = lane; chunk < K / 32; chunk += 32) {
    const unsigned* cw = wr + chunk * bits;
    const float* xc = x + chunk * 32;
    float qx = 0.f, sx = 0.f;
    #pragma unroll 8
    for (int c = 0; c < 32; ++c) { float xv = xc[c]; qx += (float)code_at(cw, c, bits) * xv; sx += xv; }
    int g = chunk * 32 / group;
    acc += scales[(i64)row * groups + g] * qx + biases[(i64)row * groups + g] * sx;
  }
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) y[row] = bias ? acc + bias[row] : acc;
}
// The decode GEMVs of the two fast widths. Lane l reads word l + 32·i of a row, so each warp-wide load is 128
// contiguous bytes of codes and a lane's x (8 or 4 floats) is contiguous beside its neighbours'. Each warp takes two
// rows at once (two rows of a matrix, or gate and up of one SwiGLU row): the x loads and Σx are shared. Per word
// s·Σq·x + b·Σx (a word never straddles a group).
// A code becomes a float with one AND and no conversion: masked in place in the low 16 bits of its word (the high half
// shifted down first), code k is the integer q·2^(BITS·j) (j = its place in the half), whose bit pattern is the float
// q·2^(BITS·j − 149) exactly (a denormal or tiny normal: below 2²³ the pattern is linear in the integer). Its x is
// pre-scaled by 2^(80 − BITS·j), so every product is q·x·2⁻⁶⁹ — powers of two, exact — and the row's Σq·x is scaled back
// by 2⁶⁹. Two instructions a code (AND, FMA) where an int→float convert (quarter rate) or a byte permute and a
// magic-number subtract took three or four; Nsight Compute had the first two forms at ~1 TB/s on an H100. Range: |x|
// below 2⁴⁸ keeps the pre-scaled x finite, and products |q·x| below 2⁻⁵⁷ lose bits as denormals (nothing a float32 sum
// of the row keeps). Denormals are kept (no flush-to-zero option is passed to NVRTC).
template <int BITS>
__device__ __forceinline__ float qword_dot(unsigned q, float4 a, float4 b) {
  unsigned h = q >> 16;
  if (BITS == 4) {
    return ((__uint_as_float(q & 0xFu) * a.x + __uint_as_float(q & 0xF0u) * a.y) + (__uint_as_float(q & 0xF00u) * a.z + __uint_as_float(q & 0xF000u) * a.w))
         + ((__uint_as_float(h & 0xFu) * b.x + __uint_as_float(h & 0xF0u) * b.y) + (__uint_as_float(h & 0xF00u) * b.z + __uint_as_float(h & 0xF000u) * b.w));
  } else {
    return (__uint_as_float(q & 0xFFu) * a.x + __uint_as_float(q & 0xFF00u) * a.y) + (__uint_as_float(h & 0xFFu) * a.z + __uint_as_float(h & 0xFF00u) * a.w);
  }
}
// The 4/8-bit GEMVs read their matrices in a lane-interleaved layout (made once per weight by qpack_lanes): a row's
// words in blocks of 128 (the last block holds the remaining 4L words, L ≤ 32), and in a block of 4L words logical word
// i·L + l stored at 4l + i. Lane l's one 16-byte load then brings words l, L + l, 2L + l, 3L + l: for each of the four,
// the warp's words are consecutive, so its x loads stay coalesced as well. Loading one 4-byte word a lane held these
// GEMVs at ~1 TB/s on an H100 (every arithmetic form tried); 16-byte loads of 32 consecutive codes a lane (the stored
// order) made each x load touch 32 cache lines and ran at ~0.6–0.9 TB/s (Nsight Compute).
__device__ __forceinline__ int lane_word(int j, int wpr) {
  int c = j & ~127, r = j - c, L = min(128, wpr - c) >> 2;
  int i = r / L;
  return c + 4 * (r - i * L) + i;
}
// dst = src with every row (wpr words, a multiple of 4) put in the lane-interleaved layout
extern "C" __global__ void qpack_lanes(const unsigned* __restrict__ src, unsigned* __restrict__ dst, i64 rows, int wpr) {
  GRID_LOOP(i, rows * wpr) {
    i64 r = i / wpr; int j = (int)(i - r * wpr);
    dst[r * wpr + lane_word(j, wpr)] = src[i];
  }
}
// Scale and bias of group g of a row: two f32 arrays, or (packed) one u32 a group holding both as bf16 — the scale in
// the low half, the bias in the high half (sb_pack; exact where the checkpoint stores them in bf16, as MLX's converter
// does from a bf16 model), which halves their share of a 4-bit matrix's bytes (1/8 → 1/16 at group 64) and their loads.
__device__ __forceinline__ void group_sb(const float* __restrict__ s, const float* __restrict__ b, int packed, i64 g, float& sv, float& bv) {
  if (packed) { unsigned p = __ldg(reinterpret_cast<const unsigned*>(s) + g); sv = __uint_as_float(p << 16); bv = __uint_as_float(p & 0xffff0000u); }
  else { sv = __ldg(s + g); bv = __ldg(b + g); }
}
// the packed form of group_sb from the stored bf16 scales and biases
extern "C" __global__ void sb_pack(const unsigned short* __restrict__ s, const unsigned short* __restrict__ b, unsigned* __restrict__ y, i64 n) {
  GRID_LOOP(i, n) y[i] = (unsigned)s[i] | ((unsigned)b[i] << 16);
}
// One logical word j of two rows (their words u0, u1) against x: s·Σq·x + b·Σx into each row's sums (a word never
// straddles a group).
template <int BITS>
__device__ __forceinline__ void qword_pair(unsigned u0, unsigned u1, int j, const float4* __restrict__ x4, int lgw,
                                           const float* __restrict__ s0, const float* __restrict__ b0, const float* __restrict__ s1,
                                           const float* __restrict__ b1, int packed, float& q0, float& c0, float& q1, float& c1) {
  const int per = 32 / BITS;                 // codes per word: 8 (4-bit) or 4 (8-bit), i.e. 2 or 1 float4 of x
  // x's pre-scaling by the code's place j in its 16-bit half: 2^(80 − BITS·j)
  const float4 pre = BITS == 4 ? make_float4(0x1p80f, 0x1p76f, 0x1p72f, 0x1p68f) : make_float4(0x1p80f, 0x1p72f, 0x1p80f, 0x1p72f);
  float4 a = __ldg(x4 + j * (per / 4)), b = per == 8 ? __ldg(x4 + j * (per / 4) + 1) : make_float4(0.f, 0.f, 0.f, 0.f);
  float sx = per == 8 ? ((a.x + a.y) + (a.z + a.w)) + ((b.x + b.y) + (b.z + b.w)) : (a.x + a.y) + (a.z + a.w);
  float4 as = make_float4(a.x * pre.x, a.y * pre.y, a.z * pre.z, a.w * pre.w);
  float4 bs = make_float4(b.x * pre.x, b.y * pre.y, b.z * pre.z, b.w * pre.w);
  int g = j >> lgw;
  float sa, ba, sb, bb;
  group_sb(s0, b0, packed, g, sa, ba);
  group_sb(s1, b1, packed, g, sb, bb);
  q0 += sa * qword_dot<BITS>(u0, as, bs); c0 += ba * sx;
  q1 += sb * qword_dot<BITS>(u1, as, bs); c1 += bb * sx;
}
// Σ_k w_r[k]·x[k] for two lane-interleaved rows r = 0, 1 (words, scales, biases) over slice `slice` of QGEMV_SLICES
// (block c of 128 words goes to slice c % QGEMV_SLICES; two blocks a row in flight before any arithmetic), summed over
// the warp (every lane gets both).
#ifndef QGEMV_SLICES
#define QGEMV_SLICES 2
#endif
template <int BITS>
__device__ __forceinline__ void qgemv_rows2(const unsigned* __restrict__ w0, const float* __restrict__ s0, const float* __restrict__ b0,
                                            const unsigned* __restrict__ w1, const float* __restrict__ s1, const float* __restrict__ b1,
                                            const float4* __restrict__ x4, int K, int group, int packed, int lane, int slice, float& out0, float& out1) {
  const int per = 32 / BITS;
  int wpr = K / per, lgw = 31 - __clz(group / per);  // words per group: a power of two (the host checks), so j >> lgw is
  float q0 = 0.f, q1 = 0.f, c0 = 0.f, c1 = 0.f;      // the group (a division by a runtime value costs ~20 instructions)
  const int step = 128 * QGEMV_SLICES;
  for (int c = 128 * slice; c < wpr; c += 2 * step) {
    int c2 = c + step;
    int L = min(128, wpr - c) >> 2, L2 = c2 < wpr ? min(128, wpr - c2) >> 2 : 0;
    uint4 a0 = make_uint4(0u, 0u, 0u, 0u), a1 = a0, a2 = a0, a3 = a0;
    if (lane < L) { a0 = __ldg(reinterpret_cast<const uint4*>(w0 + c) + lane); a1 = __ldg(reinterpret_cast<const uint4*>(w1 + c) + lane); }
    if (lane < L2) { a2 = __ldg(reinterpret_cast<const uint4*>(w0 + c2) + lane); a3 = __ldg(reinterpret_cast<const uint4*>(w1 + c2) + lane); }
    if (lane < L) {
      qword_pair<BITS>(a0.x, a1.x, c + lane, x4, lgw, s0, b0, s1, b1, packed, q0, c0, q1, c1);
      qword_pair<BITS>(a0.y, a1.y, c + L + lane, x4, lgw, s0, b0, s1, b1, packed, q0, c0, q1, c1);
      qword_pair<BITS>(a0.z, a1.z, c + 2 * L + lane, x4, lgw, s0, b0, s1, b1, packed, q0, c0, q1, c1);
      qword_pair<BITS>(a0.w, a1.w, c + 3 * L + lane, x4, lgw, s0, b0, s1, b1, packed, q0, c0, q1, c1);
    }
    if (lane < L2) {
      qword_pair<BITS>(a2.x, a3.x, c2 + lane, x4, lgw, s0, b0, s1, b1, packed, q0, c0, q1, c1);
      qword_pair<BITS>(a2.y, a3.y, c2 + L2 + lane, x4, lgw, s0, b0, s1, b1, packed, q0, c0, q1, c1);
      qword_pair<BITS>(a2.z, a3.z, c2 + 2 * L2 + lane, x4, lgw, s0, b0, s1, b1, packed, q0, c0, q1, c1);
      qword_pair<BITS>(a2.w, a3.w, c2 + 3 * L2 + lane, x4, lgw, s0, b0, s1, b1, packed, q0, c0, q1, c1);
    }
  }
  float acc0 = q0 * 0x1p69f + c0, acc1 = q1 * 0x1p69f + c1;
  for (int o = 16; o > 0; o >>= 1) { acc0 += __shfl_xor_sync(0xffffffffu, acc0, o); acc1 += __shfl_xor_sync(0xffffffffu, acc1, o); }
  out0 = acc0; out1 = acc1;
}
// Row r of a packed matrix: its words, scales and biases.
#define QROW(BITS, Wq, S, B, r) (Wq) + (i64)(r) * (K / (32 / (BITS))), (S) + (i64)(r) * (K / group), (B) + (i64)(r) * (K / group)
// Up to three packed matrices read with the same x (q/k/v in one launch): task t = global rows 2t and 2t + 1, each
// mapped to its matrix (a row past the end recomputes a valid one and is not written); K split over QGEMV_SLICES warps.
template <int BITS>
__device__ __forceinline__ void qgemv_seg(const unsigned* Wq0, const unsigned* Wq1, const unsigned* Wq2, const float* s0, const float* s1, const float* s2,
                                          const float* q0, const float* q1, const float* q2, const float* b0, const float* b1, const float* b2,
                                          float* y0, float* y1, float* y2, int n0, int n1, int n2, const float* x, int K, int group, int packed) {
  __shared__ float sh[16];
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  RowPair p = row_pair(blockIdx.x * (8 / QGEMV_SLICES) + warp / QGEMV_SLICES, n0, n1, n2);
  float ya, yb;
  qgemv_rows2<BITS>(QROW(BITS, pick3(p.sa, Wq0, Wq1, Wq2), pick3(p.sa, s0, s1, s2), pick3(p.sa, q0, q1, q2), p.ra),
                    QROW(BITS, pick3(p.sb, Wq0, Wq1, Wq2), pick3(p.sb, s0, s1, s2), pick3(p.sb, q0, q1, q2), p.rb),
                    reinterpret_cast<const float4*>(x), K, group, packed, lane, warp % QGEMV_SLICES, ya, yb);
  gemv_join<QGEMV_SLICES>(ya, yb, sh, warp, lane, ya, yb);
  if (lane == 0 && warp % QGEMV_SLICES == 0) write_pair(p, ya, yb, b0, b1, b2, y0, y1, y2);
}
#define QGEMV_SEG_ARGS const unsigned* __restrict__ Wq0, const unsigned* __restrict__ Wq1, const unsigned* __restrict__ Wq2, \
  const float* __restrict__ s0, const float* __restrict__ s1, const float* __restrict__ s2, \
  const float* __restrict__ q0, const float* __restrict__ q1, const float* __restrict__ q2, \
  const float* __restrict__ b0, const float* __restrict__ b1, const float* __restrict__ b2, \
  float* __restrict__ y0, float* __restrict__ y1, float* __restrict__ y2, int n0, int n1, int n2, const float* __restrict__ x, int K, int group, int packed
extern "C" __global__ void qgemv4(QGEMV_SEG_ARGS) { qgemv_seg<4>(Wq0, Wq1, Wq2, s0, s1, s2, q0, q1, q2, b0, b1, b2, y0, y1, y2, n0, n1, n2, x, K, group, packed); }
extern "C" __global__ void qgemv8(QGEMV_SEG_ARGS) { qgemv_seg<8>(Wq0, Wq1, Wq2, s0, s1, s2, q0, q1, q2, b0, b1, b2, y0, y1, y2, n0, n1, n2, x, K, group, packed); }
// SwiGLU's first half over two packed matrices of the same width and group size (see gemv_bf16_swiglu): task = one
// output row, its gate and up rows as the task's two rows.
template <int BITS>
__device__ __forceinline__ void qgemv_swiglu(const unsigned* Wg, const float* sg, const float* qg, const unsigned* Wu, const float* su, const float* qu,
                                             const float* bg, const float* bu, const float* x, float* y, int N, int K, int group, int packed) {
  __shared__ float sh[16];
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int row = blockIdx.x * (8 / QGEMV_SLICES) + warp / QGEMV_SLICES;
  bool valid = row < N;
  if (!valid) row = 0;
  float g, u;
  qgemv_rows2<BITS>(QROW(BITS, Wg, sg, qg, row), QROW(BITS, Wu, su, qu, row), reinterpret_cast<const float4*>(x), K, group, packed, lane,
                    warp % QGEMV_SLICES, g, u);
  gemv_join<QGEMV_SLICES>(g, u, sh, warp, lane, g, u);
  if (valid && lane == 0 && warp % QGEMV_SLICES == 0) swiglu_write(g, u, bg, bu, y, row);
}
#define QSWIGLU_ARGS const unsigned* __restrict__ Wg, const float* __restrict__ sg, const float* __restrict__ qg, \
  const unsigned* __restrict__ Wu, const float* __restrict__ su, const float* __restrict__ qu, const float* __restrict__ bg, \
  const float* __restrict__ bu, const float* __restrict__ x, float* __restrict__ y, int N, int K, int group, int packed
extern "C" __global__ void qgemv4_swiglu(QSWIGLU_ARGS) { qgemv_swiglu<4>(Wg, sg, qg, Wu, su, qu, bg, bu, x, y, N, K, group, packed); }
extern "C" __global__ void qgemv8_swiglu(QSWIGLU_ARGS) { qgemv_swiglu<8>(Wg, sg, qg, Wu, su, qu, bg, bu, x, y, N, K, group, packed); }
// rows ids[i] (or i when ids is null) dequantised to f32 [n, K]
extern "C" __global__ void dequant_rows(const unsigned* __restrict__ Wq, const float* __restrict__ scales, const float* __restrict__ biases,
                                        const int* __restrict__ ids, float* __restrict__ y, int n, int K, int bits, int group, int lanes, int packed) {
  int wpr = K / 32 * bits, groups = K / group;
  GRID_LOOP(i, (i64)n * K) {
    int k = (int)(i % K); i64 r = i / K; i64 row = ids ? ids[r] : r;
    // lanes: a 4/8-bit matrix in the GEMVs' lane-interleaved layout (a code never straddles a word there)
    unsigned q = lanes ? (Wq[row * wpr + lane_word(k * bits / 32, wpr)] >> (k * bits % 32)) & ((1u << bits) - 1u)
                       : code_at(Wq + row * wpr + (k / 32) * bits, k % 32, bits);
    int g = k / group;
    float sv, bv;
    group_sb(scales, biases, packed, row * groups + g, sv, bv);
    y[i] = sv * (float)q + bv;
  }
}

// ------------------------------------------------------------------ benchmark weights made on the device
// uniform in [-scale, scale) from a hash of (seed, index) (splitmix64): reproducible, no host upload of gigabytes
extern "C" __global__ void fill_uniform(void* __restrict__ y, int dtype, i64 n, unsigned long long seed, float scale) {
  GRID_LOOP(i, n) {
    unsigned long long z = seed + (unsigned long long)i * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull; z = (z ^ (z >> 27)) * 0x94d049bb133111ebull; z ^= z >> 31;
    float u = (float)(z >> 40) * (1.0f / 16777216.0f) * 2.f - 1.f;
    if (dtype == 2) ((bf16_t*)y)[i] = f2bf(u * scale); else ((float*)y)[i] = u * scale;
  }
}
""";
}
