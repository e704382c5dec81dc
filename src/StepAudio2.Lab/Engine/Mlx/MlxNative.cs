using System.Runtime.InteropServices;

namespace StepAudio2.Lab.Engine.Mlx;

/// <summary>
/// The mlx-c functions the <c>mlx</c> backend calls (mirrors <c>mlx/c/array.h</c>, <c>ops.h</c>, <c>fast.h</c>,
/// <c>transforms.h</c>, <c>error.h</c> of ml-explore/mlx-c at the commit scripts/build-mlx.sh pins). Every op returns 0
/// or, after calling the error handler <see cref="MlxLibrary"/> installs, a non-zero code; callers go through
/// <see cref="MlxLibrary.Check"/>. Handles are one pointer (<c>ctx</c>); a "null" optional array is ctx == 0.
/// The library is resolved by <see cref="MlxLibrary"/> (cache folder or STEPLAB_MLX_DIR), never from the system path.
/// </summary>
#pragma warning disable IDE1006, CS8981 // the C names of mlx-c, kept so the declarations read like its headers
internal static unsafe partial class MlxNative
{
    internal const string Lib = "steplab-mlxc";

    [StructLayout(LayoutKind.Sequential)] internal struct mlx_array { public nint Ctx; public bool IsNull => Ctx == 0; }
    [StructLayout(LayoutKind.Sequential)] internal struct mlx_stream { public nint Ctx; }
    [StructLayout(LayoutKind.Sequential)] internal struct mlx_vector_array { public nint Ctx; }
    [StructLayout(LayoutKind.Sequential)] internal struct mlx_string { public nint Ctx; }
    [StructLayout(LayoutKind.Sequential)] internal struct mlx_optional_int { public int Value; public byte HasValue; }
    [StructLayout(LayoutKind.Sequential)] internal struct mlx_optional_float { public float Value; public byte HasValue; }

    /// <summary>mlx_dtype (array.h), in declaration order.</summary>
    internal enum mlx_dtype
    {
        Bool, UInt8, UInt16, UInt32, UInt64, Int8, Int16, Int32, Int64, Float16, Float32, Float64, BFloat16, Complex64,
    }

    // ---------------------------------------------------------------- error.h, version.h, string.h, stream.h
    [LibraryImport(Lib)] internal static partial void mlx_set_error_handler(delegate* unmanaged[Cdecl]<byte*, void*, void> handler, void* data, void* dtor);
    [LibraryImport(Lib)] internal static partial int mlx_version(mlx_string* res);
    [LibraryImport(Lib)] internal static partial mlx_string mlx_string_new();
    [LibraryImport(Lib)] internal static partial byte* mlx_string_data(mlx_string s);
    [LibraryImport(Lib)] internal static partial int mlx_string_free(mlx_string s);
    [LibraryImport(Lib)] internal static partial mlx_stream mlx_default_cpu_stream_new();
    [LibraryImport(Lib)] internal static partial mlx_stream mlx_default_gpu_stream_new();
    [LibraryImport(Lib)] internal static partial int mlx_metal_is_available(byte* res);

    // ---------------------------------------------------------------- array.h
    [LibraryImport(Lib)] internal static partial mlx_array mlx_array_new();
    [LibraryImport(Lib)] internal static partial int mlx_array_free(mlx_array a);
    [LibraryImport(Lib)] internal static partial int mlx_array_set(mlx_array* a, mlx_array src);
    [LibraryImport(Lib)] internal static partial mlx_array mlx_array_new_float32(float v);
    [LibraryImport(Lib)] internal static partial mlx_array mlx_array_new_data(void* data, int* shape, int dim, mlx_dtype dtype);
    [LibraryImport(Lib)] internal static partial int mlx_array_eval(mlx_array a);
    [LibraryImport(Lib)] internal static partial nuint mlx_array_ndim(mlx_array a);
    [LibraryImport(Lib)] internal static partial int* mlx_array_shape(mlx_array a);
    [LibraryImport(Lib)] internal static partial nuint mlx_array_size(mlx_array a);
    [LibraryImport(Lib)] internal static partial mlx_dtype mlx_array_dtype(mlx_array a);
    // Raw bytes of an evaluated, row-contiguous array: data<uint8_t>() is a reinterpret of the buffer, whatever dtype
    // (the bf16 accessor is missing on x86, so bf16 is read through this one; the caller knows the dtype).
    [LibraryImport(Lib)] internal static partial byte* mlx_array_data_uint8(mlx_array a);

    [LibraryImport(Lib)] internal static partial mlx_vector_array mlx_vector_array_new();
    [LibraryImport(Lib)] internal static partial int mlx_vector_array_free(mlx_vector_array v);
    [LibraryImport(Lib)] internal static partial int mlx_vector_array_append_value(mlx_vector_array v, mlx_array a);
    [LibraryImport(Lib)] internal static partial int mlx_eval(mlx_vector_array outputs);

    // ---------------------------------------------------------------- ops.h
    [LibraryImport(Lib)] internal static partial int mlx_astype(mlx_array* res, mlx_array a, mlx_dtype dtype, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_reshape(mlx_array* res, mlx_array a, int* shape, nuint n, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_as_strided(mlx_array* res, mlx_array a, int* shape, nuint n, long* strides, nuint ns, nuint offset, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_contiguous(mlx_array* res, mlx_array a, [MarshalAs(UnmanagedType.U1)] bool allowColMajor, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_transpose_axes(mlx_array* res, mlx_array a, int* axes, nuint n, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_expand_dims(mlx_array* res, mlx_array a, int axis, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_zeros(mlx_array* res, int* shape, nuint n, mlx_dtype dtype, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_arange(mlx_array* res, double start, double stop, double step, mlx_dtype dtype, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_slice(mlx_array* res, mlx_array a, int* start, nuint n0, int* stop, nuint n1, int* strides, nuint n2, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_slice_update(mlx_array* res, mlx_array src, mlx_array update, int* start, nuint n0, int* stop, nuint n1, int* strides, nuint n2, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_put_along_axis(mlx_array* res, mlx_array a, mlx_array indices, mlx_array values, int axis, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_take_axis(mlx_array* res, mlx_array a, mlx_array indices, int axis, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_concatenate_axis(mlx_array* res, mlx_vector_array arrays, int axis, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_repeat_axis(mlx_array* res, mlx_array a, int repeats, int axis, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_pad(mlx_array* res, mlx_array a, int* axes, nuint n0, int* low, nuint n1, int* high, nuint n2, mlx_array value, [MarshalAs(UnmanagedType.LPUTF8Str)] string mode, mlx_stream s);

    [LibraryImport(Lib)] internal static partial int mlx_add(mlx_array* res, mlx_array a, mlx_array b, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_subtract(mlx_array* res, mlx_array a, mlx_array b, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_multiply(mlx_array* res, mlx_array a, mlx_array b, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_divide(mlx_array* res, mlx_array a, mlx_array b, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_maximum(mlx_array* res, mlx_array a, mlx_array b, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_minimum(mlx_array* res, mlx_array a, mlx_array b, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_greater(mlx_array* res, mlx_array a, mlx_array b, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_greater_equal(mlx_array* res, mlx_array a, mlx_array b, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_not_equal(mlx_array* res, mlx_array a, mlx_array b, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_where(mlx_array* res, mlx_array cond, mlx_array x, mlx_array y, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_clip(mlx_array* res, mlx_array a, mlx_array min, mlx_array max, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_logaddexp(mlx_array* res, mlx_array a, mlx_array b, mlx_stream s);

    [LibraryImport(Lib)] internal static partial int mlx_erf(mlx_array* res, mlx_array a, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_tanh(mlx_array* res, mlx_array a, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_exp(mlx_array* res, mlx_array a, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_expm1(mlx_array* res, mlx_array a, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_log(mlx_array* res, mlx_array a, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_sin(mlx_array* res, mlx_array a, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_cos(mlx_array* res, mlx_array a, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_abs(mlx_array* res, mlx_array a, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_negative(mlx_array* res, mlx_array a, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_sigmoid(mlx_array* res, mlx_array a, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_sqrt(mlx_array* res, mlx_array a, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_square(mlx_array* res, mlx_array a, mlx_stream s);

    [LibraryImport(Lib)] internal static partial int mlx_softmax_axis(mlx_array* res, mlx_array a, int axis, [MarshalAs(UnmanagedType.U1)] bool precise, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_sum_axis(mlx_array* res, mlx_array a, int axis, [MarshalAs(UnmanagedType.U1)] bool keepdims, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_mean_axis(mlx_array* res, mlx_array a, int axis, [MarshalAs(UnmanagedType.U1)] bool keepdims, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_max_axis(mlx_array* res, mlx_array a, int axis, [MarshalAs(UnmanagedType.U1)] bool keepdims, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_min_axis(mlx_array* res, mlx_array a, int axis, [MarshalAs(UnmanagedType.U1)] bool keepdims, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_argmax_axis(mlx_array* res, mlx_array a, int axis, [MarshalAs(UnmanagedType.U1)] bool keepdims, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_cumsum(mlx_array* res, mlx_array a, int axis, [MarshalAs(UnmanagedType.U1)] bool reverse, [MarshalAs(UnmanagedType.U1)] bool inclusive, mlx_stream s);

    [LibraryImport(Lib)] internal static partial int mlx_matmul(mlx_array* res, mlx_array a, mlx_array b, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_conv1d(mlx_array* res, mlx_array input, mlx_array weight, int stride, int padding, int dilation, int groups, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_conv_transpose1d(mlx_array* res, mlx_array input, mlx_array weight, int stride, int padding, int dilation, int outputPadding, int groups, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_quantized_matmul(mlx_array* res, mlx_array x, mlx_array w, mlx_array scales, mlx_array biases, [MarshalAs(UnmanagedType.U1)] bool transpose, mlx_optional_int groupSize, mlx_optional_int bits, [MarshalAs(UnmanagedType.LPUTF8Str)] string mode, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_dequantize(mlx_array* res, mlx_array w, mlx_array scales, mlx_array biases, mlx_optional_int groupSize, mlx_optional_int bits, [MarshalAs(UnmanagedType.LPUTF8Str)] string mode, mlx_array globalScale, mlx_optional_dtype dtype, mlx_stream s);

    [StructLayout(LayoutKind.Sequential)] internal struct mlx_optional_dtype { public mlx_dtype Value; public byte HasValue; }

    // ---------------------------------------------------------------- fast.h
    [LibraryImport(Lib)] internal static partial int mlx_fast_layer_norm(mlx_array* res, mlx_array x, mlx_array weight, mlx_array bias, float eps, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_fast_rms_norm(mlx_array* res, mlx_array x, mlx_array weight, float eps, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_fast_rope(mlx_array* res, mlx_array x, int dims, [MarshalAs(UnmanagedType.U1)] bool traditional, mlx_optional_float @base, float scale, int offset, mlx_array freqs, mlx_stream s);
    [LibraryImport(Lib)] internal static partial int mlx_fast_scaled_dot_product_attention(mlx_array* res, mlx_array q, mlx_array k, mlx_array v, float scale, [MarshalAs(UnmanagedType.LPUTF8Str)] string maskMode, mlx_array mask, mlx_array sinks, mlx_stream s);
}
