using System.Runtime.InteropServices;

namespace StepAudio2.Lab.Engine.Cuda;

/// <summary>
/// The entry points of the CUDA driver API, NVRTC and cuBLAS the backend uses, bound at run time as unmanaged function
/// pointers (no <c>DllImport</c> of a fixed file name, so CUDA 12 and 13 both work and a trimmed self-contained build needs
/// no native package). Mirrors the C declarations of <c>cuda.h</c>, <c>nvrtc.h</c> and <c>cublas_api.h</c>.
/// </summary>
internal sealed unsafe class CudaApi
{
    // ------------------------------------------------------------------------------------------------ driver (cuda.h)
    public readonly delegate* unmanaged<uint, int> cuInit;
    public readonly delegate* unmanaged<int*, int> cuDriverGetVersion;
    public readonly delegate* unmanaged<int*, int> cuDeviceGetCount;
    public readonly delegate* unmanaged<int*, int, int> cuDeviceGet;
    public readonly delegate* unmanaged<byte*, int, int, int> cuDeviceGetName;
    public readonly delegate* unmanaged<int*, int, int, int> cuDeviceGetAttribute;
    public readonly delegate* unmanaged<nuint*, int, int> cuDeviceTotalMem;
    public readonly delegate* unmanaged<IntPtr*, int, int> cuDevicePrimaryCtxRetain;
    public readonly delegate* unmanaged<IntPtr, int> cuCtxSetCurrent;
    public readonly delegate* unmanaged<int> cuCtxSynchronize;
    public readonly delegate* unmanaged<ulong*, nuint, IntPtr, int> cuMemAllocAsync;
    public readonly delegate* unmanaged<ulong, IntPtr, int> cuMemFreeAsync;
    public readonly delegate* unmanaged<IntPtr*, int, int> cuDeviceGetDefaultMemPool;
    public readonly delegate* unmanaged<IntPtr, int, void*, int> cuMemPoolSetAttribute;
    public readonly delegate* unmanaged<nuint*, nuint*, int> cuMemGetInfo;
    public readonly delegate* unmanaged<ulong, void*, nuint, IntPtr, int> cuMemcpyHtoDAsync;
    public readonly delegate* unmanaged<void*, ulong, nuint, IntPtr, int> cuMemcpyDtoHAsync;
    public readonly delegate* unmanaged<ulong, ulong, nuint, IntPtr, int> cuMemcpyDtoDAsync;
    public readonly delegate* unmanaged<void**, nuint, int> cuMemAllocHost;
    public readonly delegate* unmanaged<void*, int> cuMemFreeHost;
    public readonly delegate* unmanaged<ulong, byte, nuint, IntPtr, int> cuMemsetD8Async;
    public readonly delegate* unmanaged<IntPtr, int> cuStreamSynchronize;
    public readonly delegate* unmanaged<IntPtr*, byte*, int> cuModuleLoadData;
    public readonly delegate* unmanaged<IntPtr*, IntPtr, byte*, int> cuModuleGetFunction;
    public readonly delegate* unmanaged<IntPtr, uint, uint, uint, uint, uint, uint, uint, IntPtr, void**, void**, int> cuLaunchKernel;
    public readonly delegate* unmanaged<int, byte**, int> cuGetErrorString;
    /// <summary>Bounds of the range a profiler started with "profile from start off" records (Nsight Compute's
    /// <c>--profile-from-start off</c>): the GPU runner marks a few decoding steps with them.</summary>
    public readonly delegate* unmanaged<int> cuProfilerStart, cuProfilerStop;

    // ------------------------------------------------------------------------------------------------ NVRTC (nvrtc.h)
    public readonly delegate* unmanaged<IntPtr*, byte*, byte*, int, byte**, byte**, int> nvrtcCreateProgram;
    public readonly delegate* unmanaged<IntPtr, int, byte**, int> nvrtcCompileProgram;
    public readonly delegate* unmanaged<IntPtr*, int> nvrtcDestroyProgram;
    public readonly delegate* unmanaged<IntPtr, nuint*, int> nvrtcGetProgramLogSize;
    public readonly delegate* unmanaged<IntPtr, byte*, int> nvrtcGetProgramLog;
    public readonly delegate* unmanaged<IntPtr, nuint*, int> nvrtcGetCUBINSize;
    public readonly delegate* unmanaged<IntPtr, byte*, int> nvrtcGetCUBIN;
    public readonly delegate* unmanaged<int*, int*, int> nvrtcVersion;

    // ------------------------------------------------------------------------------------------------ cuBLAS (cublas_api.h)
    public readonly delegate* unmanaged<IntPtr*, int> cublasCreate;
    public readonly delegate* unmanaged<IntPtr, IntPtr, int> cublasSetStream;
    public readonly delegate* unmanaged<IntPtr, int, int> cublasSetMathMode;
    public readonly delegate* unmanaged<IntPtr, int*, int> cublasGetVersion;
    // handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta, C, Ctype, ldc, strideC, batch, compute, algo
    public readonly delegate* unmanaged<IntPtr, int, int, int, int, int, void*, ulong, int, int, long, ulong, int, int, long, void*, ulong, int, int, long, int, int, int, int> cublasGemmStridedBatchedEx;

    public string DriverPath { get; }
    public string NvrtcPath { get; }
    public string CublasPath { get; }

    public CudaApi()
    {
        var dirs = CudaLibraries.SearchDirectories();
        var (drv, drvPath) = CudaLibraries.Load("the NVIDIA driver (libcuda)", CudaLibraries.DriverNames, dirs);
        DriverPath = drvPath;
        IntPtr D(string s) => CudaLibraries.Export(drv, drvPath, s);
        cuInit = (delegate* unmanaged<uint, int>)D("cuInit");
        cuDriverGetVersion = (delegate* unmanaged<int*, int>)D("cuDriverGetVersion");
        cuDeviceGetCount = (delegate* unmanaged<int*, int>)D("cuDeviceGetCount");
        cuDeviceGet = (delegate* unmanaged<int*, int, int>)D("cuDeviceGet");
        cuDeviceGetName = (delegate* unmanaged<byte*, int, int, int>)D("cuDeviceGetName");
        cuDeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)D("cuDeviceGetAttribute");
        cuDeviceTotalMem = (delegate* unmanaged<nuint*, int, int>)D("cuDeviceTotalMem_v2");
        cuDevicePrimaryCtxRetain = (delegate* unmanaged<IntPtr*, int, int>)D("cuDevicePrimaryCtxRetain");
        cuCtxSetCurrent = (delegate* unmanaged<IntPtr, int>)D("cuCtxSetCurrent");
        cuCtxSynchronize = (delegate* unmanaged<int>)D("cuCtxSynchronize");
        cuMemAllocAsync = (delegate* unmanaged<ulong*, nuint, IntPtr, int>)D("cuMemAllocAsync");
        cuMemFreeAsync = (delegate* unmanaged<ulong, IntPtr, int>)D("cuMemFreeAsync");
        cuDeviceGetDefaultMemPool = (delegate* unmanaged<IntPtr*, int, int>)D("cuDeviceGetDefaultMemPool");
        cuMemPoolSetAttribute = (delegate* unmanaged<IntPtr, int, void*, int>)D("cuMemPoolSetAttribute");
        cuMemGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)D("cuMemGetInfo_v2");
        cuMemcpyHtoDAsync = (delegate* unmanaged<ulong, void*, nuint, IntPtr, int>)D("cuMemcpyHtoDAsync_v2");
        cuMemcpyDtoHAsync = (delegate* unmanaged<void*, ulong, nuint, IntPtr, int>)D("cuMemcpyDtoHAsync_v2");
        cuMemcpyDtoDAsync = (delegate* unmanaged<ulong, ulong, nuint, IntPtr, int>)D("cuMemcpyDtoDAsync_v2");
        cuMemAllocHost = (delegate* unmanaged<void**, nuint, int>)D("cuMemAllocHost_v2");
        cuMemFreeHost = (delegate* unmanaged<void*, int>)D("cuMemFreeHost");
        cuMemsetD8Async = (delegate* unmanaged<ulong, byte, nuint, IntPtr, int>)D("cuMemsetD8Async");
        cuStreamSynchronize = (delegate* unmanaged<IntPtr, int>)D("cuStreamSynchronize");
        cuProfilerStart = (delegate* unmanaged<int>)D("cuProfilerStart");
        cuProfilerStop = (delegate* unmanaged<int>)D("cuProfilerStop");
        cuModuleLoadData = (delegate* unmanaged<IntPtr*, byte*, int>)D("cuModuleLoadData");
        cuModuleGetFunction = (delegate* unmanaged<IntPtr*, IntPtr, byte*, int>)D("cuModuleGetFunction");
        cuLaunchKernel = (delegate* unmanaged<IntPtr, uint, uint, uint, uint, uint, uint, uint, IntPtr, void**, void**, int>)D("cuLaunchKernel");
        cuGetErrorString = (delegate* unmanaged<int, byte**, int>)D("cuGetErrorString");

        var (nv, nvPath) = CudaLibraries.Load("NVRTC (libnvrtc)", CudaLibraries.NvrtcNames, dirs);
        NvrtcPath = nvPath;
        IntPtr N(string s) => CudaLibraries.Export(nv, nvPath, s);
        nvrtcCreateProgram = (delegate* unmanaged<IntPtr*, byte*, byte*, int, byte**, byte**, int>)N("nvrtcCreateProgram");
        nvrtcCompileProgram = (delegate* unmanaged<IntPtr, int, byte**, int>)N("nvrtcCompileProgram");
        nvrtcDestroyProgram = (delegate* unmanaged<IntPtr*, int>)N("nvrtcDestroyProgram");
        nvrtcGetProgramLogSize = (delegate* unmanaged<IntPtr, nuint*, int>)N("nvrtcGetProgramLogSize");
        nvrtcGetProgramLog = (delegate* unmanaged<IntPtr, byte*, int>)N("nvrtcGetProgramLog");
        nvrtcGetCUBINSize = (delegate* unmanaged<IntPtr, nuint*, int>)N("nvrtcGetCUBINSize");
        nvrtcGetCUBIN = (delegate* unmanaged<IntPtr, byte*, int>)N("nvrtcGetCUBIN");
        nvrtcVersion = (delegate* unmanaged<int*, int*, int>)N("nvrtcVersion");

        var (bl, blPath) = CudaLibraries.Load("cuBLAS (libcublas)", CudaLibraries.CublasNames, dirs);
        CublasPath = blPath;
        IntPtr B(string s) => CudaLibraries.Export(bl, blPath, s);
        cublasCreate = (delegate* unmanaged<IntPtr*, int>)B("cublasCreate_v2");
        cublasSetStream = (delegate* unmanaged<IntPtr, IntPtr, int>)B("cublasSetStream_v2");
        cublasSetMathMode = (delegate* unmanaged<IntPtr, int, int>)B("cublasSetMathMode");
        cublasGetVersion = (delegate* unmanaged<IntPtr, int*, int>)B("cublasGetVersion_v2");
        cublasGemmStridedBatchedEx = (delegate* unmanaged<IntPtr, int, int, int, int, int, void*, ulong, int, int, long, ulong, int, int, long, void*, ulong, int, int, long, int, int, int, int>)B("cublasGemmStridedBatchedEx");
    }

    /// <summary>Throws <see cref="CudaException"/> naming the call and the driver's text for a non-zero result.</summary>
    public void Check(int result, string call)
    {
        if (result == 0) return;
        string text = "";
        byte* s = null;
        if (cuGetErrorString(result, &s) == 0 && s != null) text = Marshal.PtrToStringAnsi((IntPtr)s) ?? "";
        throw new CudaException($"CUDA: {call} failed with {result} ({text})");
    }

    public static void CheckBlas(int status, string call)
    {
        if (status != 0) throw new CudaException($"cuBLAS: {call} failed with status {status} ({BlasStatusName(status)})");
    }

    public static string BlasStatusName(int s) => s switch
    {
        1 => "NOT_INITIALIZED", 3 => "ALLOC_FAILED", 7 => "INVALID_VALUE", 8 => "ARCH_MISMATCH", 11 => "MAPPING_ERROR",
        13 => "EXECUTION_FAILED", 14 => "INTERNAL_ERROR", 15 => "NOT_SUPPORTED", 16 => "LICENSE_ERROR", _ => "unknown",
    };

    // cuBLAS / CUDA enum values used by the backend (library_types.h, cublas_api.h)
    public const int OpN = 0, OpT = 1;
    public const int R32F = 0, R16BF = 14;
    public const int Compute32F = 68, Compute32FFastTf32 = 77;
    public const int GemmDefault = -1;
    public const int DefaultMath = 0;
    public const int AttrComputeCapabilityMajor = 75, AttrComputeCapabilityMinor = 76, AttrMultiprocessorCount = 16;
    public const int MemPoolAttrReleaseThreshold = 4;
}
