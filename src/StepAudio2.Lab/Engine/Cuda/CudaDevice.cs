using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;

namespace StepAudio2.Lab.Engine.Cuda;

/// <summary>Shape plus up to three stride sets for the strided kernels; the layout of <c>struct Strided</c> in <see cref="CudaKernels.Source"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct StridedMeta
{
    public int Rank;
    private int _pad;
    public fixed long Shape[CudaKernels.MaxRank];
    public fixed long S0[CudaKernels.MaxRank];
    public fixed long S1[CudaKernels.MaxRank];
    public fixed long S2[CudaKernels.MaxRank];

    public static StridedMeta Create(ReadOnlySpan<int> shape, ReadOnlySpan<long> s0, ReadOnlySpan<long> s1 = default, ReadOnlySpan<long> s2 = default)
    {
        if (shape.Length > CudaKernels.MaxRank) throw new ArgumentException($"CUDA backend: rank {shape.Length} exceeds {CudaKernels.MaxRank}");
        var m = new StridedMeta { Rank = shape.Length };
        for (int i = 0; i < shape.Length; i++)
        {
            m.Shape[i] = shape[i];
            m.S0[i] = s0.IsEmpty ? 0 : s0[i];
            m.S1[i] = s1.IsEmpty ? 0 : s1[i];
            m.S2[i] = s2.IsEmpty ? 0 : s2[i];
        }
        return m;
    }
}

/// <summary>One kernel argument in an 8-byte slot (device pointers, 64-bit and 32-bit integers, floats; the kernel reads its own width).</summary>
internal readonly struct KArg
{
    public readonly ulong Bits;
    private KArg(ulong bits) => Bits = bits;
    public static implicit operator KArg(ulong p) => new(p);
    public static implicit operator KArg(long v) => new((ulong)v);
    public static implicit operator KArg(int v) => new((uint)v);
    public static implicit operator KArg(float v) => new(BitConverter.SingleToUInt32Bits(v));
}

/// <summary>A block of device memory. Freed by <see cref="Dispose"/> or, when dropped, on the owning thread's next allocation
/// (finalizers only queue the pointer: the CUDA context is not current on the finalizer thread).</summary>
public sealed class DeviceBuffer : IDisposable
{
    private readonly CudaDevice _device;
    private int _freed;

    internal DeviceBuffer(CudaDevice device, ulong ptr, long bytes)
    {
        _device = device;
        Ptr = ptr;
        Bytes = bytes;
    }

    public ulong Ptr { get; }
    public long Bytes { get; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _freed, 1) == 0) _device.Release(Ptr, Bytes);
        GC.SuppressFinalize(this);
    }

    ~DeviceBuffer()
    {
        if (Interlocked.Exchange(ref _freed, 1) == 0) _device.Release(Ptr, Bytes);
    }
}

/// <summary>
/// One CUDA device: primary context, the compiled kernel module, a cuBLAS handle and the stream-ordered allocator
/// (<c>cuMemAllocAsync</c> on the default pool, kept instead of returned to the driver, so per-op buffers cost no
/// synchronisation). Everything runs on the legacy default stream, in order.
/// </summary>
public sealed unsafe class CudaDevice
{
    private static readonly object Gate = new();
    private static CudaDevice? _shared;
    private static Exception? _failure;

    internal readonly CudaApi Api;
    private readonly IntPtr _context, _module, _blas;
    private readonly Dictionary<string, IntPtr> _functions = new();
    private readonly ConcurrentQueue<(ulong Ptr, long Bytes)> _dropped = new();
    private long _liveBytes, _peakBytes, _sinceCollect;

    /// <summary>Allocations between two forced (young-generation) collections. Dropped activations are only found by the
    /// garbage collector, so up to this much garbage is held on the device at once: 4 GiB made the full-size bf16 ASR path
    /// peak at 19.6 GiB live on an H100 (15.5 GiB of weights), 1 GiB 16.7 GiB.</summary>
    private const long CollectAfterBytes = 512L << 20;

    public string Name { get; }
    public int Major { get; }
    public int Minor { get; }
    public int Multiprocessors { get; }
    public long TotalMemory { get; }
    public int DriverVersion { get; }
    public string NvrtcVersion { get; }
    public int CublasVersion { get; }
    public bool KernelsFromCache { get; }
    public double KernelLoadMs { get; }
    public string CubinPath { get; }
    public string LibraryPaths => $"{Api.DriverPath}, {Api.NvrtcPath}, {Api.CublasPath}";
    /// <summary>Device bytes held by live buffers.</summary>
    public long LiveBytes => Interlocked.Read(ref _liveBytes);
    /// <summary>The most device bytes held by live buffers at once since the device was made or <see cref="ResetPeak"/>.</summary>
    public long PeakLiveBytes => Interlocked.Read(ref _peakBytes);
    /// <summary>Starts the peak over from the bytes live now.</summary>
    public void ResetPeak() => Interlocked.Exchange(ref _peakBytes, LiveBytes);

    /// <summary>Free and total bytes of the device as the driver reports them (every process and the pool's reserve).</summary>
    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrentIfNeeded();
        nuint free = 0, total = 0;
        Api.Check(Api.cuMemGetInfo(&free, &total), "cuMemGetInfo");
        return ((long)free, (long)total);
    }

    /// <summary>The process's device 0 (made once; a failure is remembered and rethrown with the same message).</summary>
    public static CudaDevice Shared
    {
        get
        {
            lock (Gate)
            {
                if (_shared is not null) return _shared;
                if (_failure is not null) throw _failure is CudaUnavailableException u ? new CudaUnavailableException(u.Message, u) : new CudaException(_failure.Message);
                try { return _shared = new CudaDevice(0); }
                catch (Exception e) { _failure = e; throw; }
            }
        }
    }

    /// <summary>Why no device can be used here, or null when one can (for tests that skip with a visible reason).</summary>
    public static string? UnavailableReason()
    {
        try { _ = Shared; return null; }
        catch (Exception e) when (e is CudaUnavailableException or CudaException or DllNotFoundException or EntryPointNotFoundException) { return e.Message; }
    }

    private CudaDevice(int ordinal)
    {
        try { Api = new CudaApi(); }
        catch (DllNotFoundException e) { throw new CudaUnavailableException($"CUDA backend: {e.Message}", e); }
        int rc = Api.cuInit(0);
        if (rc != 0)
            throw new CudaUnavailableException($"CUDA backend: cuInit failed with {rc} (100 = no CUDA-capable device, 999 = unknown; is a GPU present and the driver loaded?) using {Api.DriverPath}");
        int count = 0;
        Api.Check(Api.cuDeviceGetCount(&count), "cuDeviceGetCount");
        if (count <= ordinal) throw new CudaUnavailableException($"CUDA backend: no CUDA device {ordinal} ({count} found)");
        int dev;
        Api.Check(Api.cuDeviceGet(&dev, ordinal), "cuDeviceGet");
        byte* name = stackalloc byte[256];
        Api.Check(Api.cuDeviceGetName(name, 256, dev), "cuDeviceGetName");
        Name = Marshal.PtrToStringAnsi((IntPtr)name) ?? "?";
        int v;
        Api.Check(Api.cuDeviceGetAttribute(&v, CudaApi.AttrComputeCapabilityMajor, dev), "cuDeviceGetAttribute");
        Major = v;
        Api.Check(Api.cuDeviceGetAttribute(&v, CudaApi.AttrComputeCapabilityMinor, dev), "cuDeviceGetAttribute");
        Minor = v;
        Api.Check(Api.cuDeviceGetAttribute(&v, CudaApi.AttrMultiprocessorCount, dev), "cuDeviceGetAttribute");
        Multiprocessors = v;
        nuint total;
        Api.Check(Api.cuDeviceTotalMem(&total, dev), "cuDeviceTotalMem");
        TotalMemory = (long)total;
        Api.Check(Api.cuDriverGetVersion(&v), "cuDriverGetVersion");
        DriverVersion = v;
        IntPtr ctx;
        Api.Check(Api.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
        _context = ctx;
        Api.Check(Api.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
        // keep freed blocks in the pool (a release threshold of "everything") so steady-state allocation is free
        IntPtr pool;
        Api.Check(Api.cuDeviceGetDefaultMemPool(&pool, dev), "cuDeviceGetDefaultMemPool");
        ulong keep = ulong.MaxValue;
        Api.Check(Api.cuMemPoolSetAttribute(pool, CudaApi.MemPoolAttrReleaseThreshold, &keep), "cuMemPoolSetAttribute");

        int nmaj = 0, nmin = 0;
        Api.nvrtcVersion(&nmaj, &nmin);
        NvrtcVersion = $"{nmaj}.{nmin}";
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var (cubin, cached, path) = CudaCompiler.Compile(Api, CudaKernels.Source, Major, Minor);
        KernelsFromCache = cached;
        CubinPath = path;
        IntPtr module;
        fixed (byte* pc = cubin) Api.Check(Api.cuModuleLoadData(&module, pc), "cuModuleLoadData");
        _module = module;
        KernelLoadMs = sw.Elapsed.TotalMilliseconds;

        IntPtr blas;
        CudaApi.CheckBlas(Api.cublasCreate(&blas), "cublasCreate");
        _blas = blas;
        CudaApi.CheckBlas(Api.cublasSetStream(blas, IntPtr.Zero), "cublasSetStream");
        CudaApi.CheckBlas(Api.cublasSetMathMode(blas, CudaApi.DefaultMath), "cublasSetMathMode");
        int bv = 0;
        Api.cublasGetVersion(blas, &bv);
        CublasVersion = bv;
    }

    public string Describe() =>
        $"{Name} (sm_{Major}{Minor}, {Multiprocessors} SMs, {TotalMemory / (1L << 30)} GiB), driver {DriverVersion / 1000}.{DriverVersion % 1000 / 10}, NVRTC {NvrtcVersion}, cuBLAS {CublasVersion}";

    /// <summary>Makes the context current on the calling thread (the backend may be used from a thread-pool thread).</summary>
    internal void MakeCurrent() => Api.Check(Api.cuCtxSetCurrent(_context), "cuCtxSetCurrent");

    [ThreadStatic] private static CudaDevice? t_current;

    /// <summary>Sets the context on a thread the first time this device is used there (cheap afterwards).</summary>
    internal void MakeCurrentIfNeeded()
    {
        if (ReferenceEquals(t_current, this)) return;
        MakeCurrent();
        t_current = this;
    }

    // ------------------------------------------------------------------------------------------------ memory

    /// <summary>A fresh buffer (contents undefined), from this device's free blocks of its size class when one is there.
    /// A decoding step allocates and drops ~500 activations of the same few sizes; reusing a block costs no driver call
    /// (cuMemAllocAsync + cuMemFreeAsync were two of the host's per-op calls). Reuse is safe without synchronisation:
    /// every kernel and copy runs in order on the one stream, so a block's next user is queued after its last one.</summary>
    public DeviceBuffer Allocate(long bytes)
    {
        long size = SizeClass(Math.Max(bytes, 256));
        Interlocked.Add(ref _sinceCollect, size);
        ulong p = 0;
        bool reused = false;
        if (size <= MaxCachedBlock)
            lock (_free)
                if (_free.TryGetValue(size, out var stack) && stack.Count > 0) { p = stack.Pop(); reused = true; }
        if (!reused)
        {
            int rc = Api.cuMemAllocAsync(&p, (nuint)size, IntPtr.Zero);
            if (rc == 2) // CUDA_ERROR_OUT_OF_MEMORY: hand back the cached blocks and what the garbage collector still holds, then try once more
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                Drain();
                ReleaseCached();
                Api.cuCtxSynchronize();
                rc = Api.cuMemAllocAsync(&p, (nuint)size, IntPtr.Zero);
            }
            if (rc != 0)
            {
                nuint free = 0, total = 0;
                Api.cuMemGetInfo(&free, &total);
                Api.Check(rc, $"cuMemAllocAsync of {size} bytes ({LiveBytes / (1 << 20)} MiB live, {(long)free / (1 << 20)} MiB free of {(long)total / (1 << 20)})");
            }
        }
        long live = Interlocked.Add(ref _liveBytes, size);
        for (long peak = Interlocked.Read(ref _peakBytes); live > peak; peak = Interlocked.Read(ref _peakBytes))
            if (Interlocked.CompareExchange(ref _peakBytes, live, peak) == peak) break;
        return new DeviceBuffer(this, p, size);
    }

    /// <summary>Blocks up to this size are kept for reuse when dropped; larger ones go back to the driver's pool.</summary>
    private const long MaxCachedBlock = 64L << 20;

    /// <summary>Size classes: eight per power of two (a block is at most 12.5 % larger than asked), so the sizes of a
    /// step (and of the attention rows that grow by one each step) fall into few classes.</summary>
    internal static long SizeClass(long bytes)
    {
        if (bytes <= 512) return 512;
        long step = (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)bytes + 1) / 16;
        return (bytes + step - 1) / step * step;
    }

    private readonly Dictionary<long, Stack<ulong>> _free = new();

    private void ReleaseCached()
    {
        lock (_free)
        {
            foreach (var stack in _free.Values)
                while (stack.Count > 0) Api.cuMemFreeAsync(stack.Pop(), IntPtr.Zero);
        }
    }

    internal void Release(ulong ptr, long bytes) => _dropped.Enqueue((ptr, bytes));

    /// <summary>Returns dropped buffers for reuse; after <see cref="CollectAfterBytes"/> of allocations, runs a young-generation
    /// collection first so that dropped activations are found (their finalizers queue them): activations die young, and a
    /// generation-1 collection does not walk the host-side weights (a full one every 1 GiB cost ~0.7 ms per decoded token
    /// on the full-size model). Called between ops only: frees are stream-ordered after every kernel queued so far, and no
    /// op is half-way through using a buffer then.</summary>
    internal void DrainDropped()
    {
        if (Interlocked.Read(ref _sinceCollect) > CollectAfterBytes)
        {
            Interlocked.Exchange(ref _sinceCollect, 0);
            GC.Collect(1, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
        }
        Drain();
    }

    private void Drain()
    {
        while (_dropped.TryDequeue(out var d))
        {
            Interlocked.Add(ref _liveBytes, -d.Bytes);
            if (d.Bytes <= MaxCachedBlock)
            {
                lock (_free)
                {
                    if (!_free.TryGetValue(d.Bytes, out var stack)) _free[d.Bytes] = stack = new Stack<ulong>();
                    stack.Push(d.Ptr);
                }
            }
            else Api.cuMemFreeAsync(d.Ptr, IntPtr.Zero);
        }
    }

    public void Upload(ulong dst, ReadOnlySpan<byte> src)
    {
        if (src.IsEmpty) return;
        fixed (byte* p = src) Api.Check(Api.cuMemcpyHtoDAsync(dst, p, (nuint)src.Length, IntPtr.Zero), "cuMemcpyHtoD");
    }

    /// <summary>Downloads up to this size go through one reused page-locked buffer (a DMA at full PCIe speed, ~25 µs
    /// for a decode step's 620 KB of logits, where a pageable copy is staged by the driver in pieces).</summary>
    private const long PinnedStagingLimit = 64L << 20;
    private byte* _staging;
    private long _stagingBytes;
    private readonly object _stagingGate = new();

    public void Download(Span<byte> dst, ulong src)
    {
        if (dst.IsEmpty) return;
        if (dst.Length <= PinnedStagingLimit)
        {
            lock (_stagingGate)
            {
                if (_stagingBytes < dst.Length)
                {
                    if (_staging != null) Api.cuMemFreeHost(_staging);
                    _staging = null; _stagingBytes = 0;
                    long size = Math.Max(dst.Length, 1L << 20);
                    void* p;
                    Api.Check(Api.cuMemAllocHost(&p, (nuint)size), $"cuMemAllocHost of {size} bytes (page-locked staging for downloads)");
                    _staging = (byte*)p; _stagingBytes = size;
                }
                Api.Check(Api.cuMemcpyDtoHAsync(_staging, src, (nuint)dst.Length, IntPtr.Zero), "cuMemcpyDtoH");
                Synchronize();
                new ReadOnlySpan<byte>(_staging, dst.Length).CopyTo(dst);
                return;
            }
        }
        fixed (byte* p = dst) Api.Check(Api.cuMemcpyDtoHAsync(p, src, (nuint)dst.Length, IntPtr.Zero), "cuMemcpyDtoH");
        Synchronize(); // pageable destination: make sure the bytes are there before the caller reads them
    }

    public void CopyDevice(ulong dst, ulong src, long bytes)
    {
        if (bytes > 0) Api.Check(Api.cuMemcpyDtoDAsync(dst, src, (nuint)bytes, IntPtr.Zero), "cuMemcpyDtoD");
    }

    public void Zero(ulong dst, long bytes)
    {
        if (bytes > 0) Api.Check(Api.cuMemsetD8Async(dst, 0, (nuint)bytes, IntPtr.Zero), "cuMemsetD8");
    }

    /// <summary>Starts or stops the range a profiler attached with "profile from start off" records (after the queued work).</summary>
    public void ProfilerRange(bool on)
    {
        Synchronize();
        Api.Check(on ? Api.cuProfilerStart() : Api.cuProfilerStop(), on ? "cuProfilerStart" : "cuProfilerStop");
    }

    public void Synchronize()
    {
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        Api.Check(Api.cuCtxSynchronize(), "cuCtxSynchronize (a kernel or copy before it failed)");
        Interlocked.Add(ref _syncTicks, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
    }

    private long _syncTicks;

    /// <summary>Seconds the host has spent waiting in <see cref="Synchronize"/> (downloads included) since the device was
    /// made: with a step's wall time it says whether the host (launching ops) or the device (running them) bounds a
    /// decoding step — a host-bound step barely waits.</summary>
    public double SyncWaitSeconds => Interlocked.Read(ref _syncTicks) / (double)System.Diagnostics.Stopwatch.Frequency;

    // ------------------------------------------------------------------------------------------------ kernels

    private IntPtr Function(string name)
    {
        if (_functions.TryGetValue(name, out var f)) return f;
        var bytes = Encoding.ASCII.GetBytes(name + "\0");
        fixed (byte* pn = bytes) Api.Check(Api.cuModuleGetFunction(&f, _module, pn), $"cuModuleGetFunction({name})");
        return _functions[name] = f;
    }

    /// <summary>Launches a grid-stride kernel over <paramref name="work"/> items.</summary>
    internal void Launch(string name, long work, ReadOnlySpan<KArg> args, StridedMeta* meta = null, uint block = 256)
    {
        if (work <= 0) return;
        long blocks = Math.Min((work + block - 1) / block, (long)Multiprocessors * 64);
        LaunchGrid(name, (uint)Math.Max(blocks, 1), block, args, meta);
    }

    /// <summary>Launches exactly <paramref name="grid"/> blocks of <paramref name="block"/> threads.</summary>
    internal void LaunchGrid(string name, uint grid, uint block, ReadOnlySpan<KArg> args, StridedMeta* meta = null) =>
        LaunchGrid(name, grid, 1, block, 0, args, meta);

    /// <summary>Launches a grid of <paramref name="grid"/> × <paramref name="gridY"/> blocks with <paramref name="sharedBytes"/>
    /// of dynamic shared memory each.</summary>
    internal void LaunchGrid(string name, uint grid, uint gridY, uint block, uint sharedBytes, ReadOnlySpan<KArg> args, StridedMeta* meta = null)
    {
        if (grid == 0 || gridY == 0) return;
        int n = args.Length + (meta != null ? 1 : 0);
        ulong* slots = stackalloc ulong[Math.Max(args.Length, 1)];
        void** ptrs = stackalloc void*[Math.Max(n, 1)];
        for (int i = 0; i < args.Length; i++) { slots[i] = args[i].Bits; ptrs[i] = slots + i; }
        if (meta != null) ptrs[args.Length] = meta;
        int rc = Api.cuLaunchKernel(Function(name), grid, gridY, 1, block, 1, 1, sharedBytes, IntPtr.Zero, ptrs, null);
        // the message is formatted only on failure: this runs hundreds of times per decoded token
        if (rc != 0) Api.Check(rc, $"cuLaunchKernel({name}, grid {grid}×{gridY}, block {block}, shared {sharedBytes} B)");
    }

    // ------------------------------------------------------------------------------------------------ cuBLAS

    /// <summary>Column-major strided-batched C = op(A)·op(B) (cuBLAS's convention); alpha 1, beta 0 unless accumulate.</summary>
    internal void Gemm(bool transA, bool transB, int m, int n, int k, ulong a, int abType, int lda, long strideA, ulong b, int ldb, long strideB,
        ulong c, int ldc, long strideC, int batch, int compute, bool accumulate = false)
    {
        float alpha = 1f, beta = accumulate ? 1f : 0f;
        int status = Api.cublasGemmStridedBatchedEx(_blas, transA ? CudaApi.OpT : CudaApi.OpN, transB ? CudaApi.OpT : CudaApi.OpN, m, n, k,
            &alpha, a, abType, lda, strideA, b, abType, ldb, strideB, &beta, c, CudaApi.R32F, ldc, strideC, batch, compute, CudaApi.GemmDefault);
        if (status != 0) CudaApi.CheckBlas(status, $"cublasGemmStridedBatchedEx(m={m}, n={n}, k={k}, batch={batch}, type={abType}, compute={compute})");
    }
}
