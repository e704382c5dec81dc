using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace StepAudio2.Lab.Engine.Cuda;

/// <summary>
/// Compiles <see cref="CudaKernels.Source"/> with NVRTC for one architecture (<c>sm_XY</c> → a cubin) and keeps the result in
/// <c>~/.cache/steplab/cuda/&lt;sha256&gt;.cubin</c> (override: <c>STEPLAB_CUDA_CACHE</c>), keyed by the source, the options
/// and the NVRTC version, so the second start of a process loads the cubin without compiling.
/// </summary>
internal static unsafe class CudaCompiler
{
    public const string CacheVariable = "STEPLAB_CUDA_CACHE";

    public static string CacheDirectory =>
        Environment.GetEnvironmentVariable(CacheVariable) is { Length: > 0 } d ? d
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) is { Length: > 0 } h ? h : Path.GetTempPath(), ".cache", "steplab", "cuda");

    /// <summary>Options NVRTC gets (NVRTC takes no -O3; its default optimisation is full).</summary>
    public static string[] Options(int major, int minor) =>
        [$"--gpu-architecture=sm_{major}{minor}", "--std=c++17", "-default-device", $"-DQGEMV_SLICES={CudaKernels.QGemvSlices}"];

    public static (byte[] Cubin, bool FromCache, string Path) Compile(CudaApi api, string source, int major, int minor)
    {
        int vmaj = 0, vmin = 0;
        api.nvrtcVersion(&vmaj, &vmin);
        var options = Options(major, minor);
        string key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{source}\n{string.Join(' ', options)}\nnvrtc {vmaj}.{vmin}"))).ToLowerInvariant()[..32];
        string path = Path.Combine(CacheDirectory, key + ".cubin");
        if (File.Exists(path))
        {
            try { return (File.ReadAllBytes(path), true, path); }
            catch (IOException) { /* unreadable cache: compile again */ }
        }

        IntPtr prog;
        byte[] src = Encoding.UTF8.GetBytes(source + "\0"), name = "steplab_kernels.cu\0"u8.ToArray();
        fixed (byte* ps = src, pn = name)
            CheckNvrtc(api.nvrtcCreateProgram(&prog, ps, pn, 0, null, null), "nvrtcCreateProgram", null);
        try
        {
            var native = options.Select(o => Marshal.StringToHGlobalAnsi(o)).ToArray();
            int rc;
            try
            {
                fixed (IntPtr* po = native) rc = api.nvrtcCompileProgram(prog, native.Length, (byte**)po);
            }
            finally { foreach (var p in native) Marshal.FreeHGlobal(p); }
            nuint logSize;
            api.nvrtcGetProgramLogSize(prog, &logSize);
            var log = new byte[(int)logSize];
            fixed (byte* pl = log) api.nvrtcGetProgramLog(prog, pl);
            string logText = Encoding.UTF8.GetString(log).TrimEnd('\0', '\n', ' ');
            CheckNvrtc(rc, $"nvrtcCompileProgram ({string.Join(' ', options)})", logText);
            nuint size;
            CheckNvrtc(api.nvrtcGetCUBINSize(prog, &size), "nvrtcGetCUBINSize", null);
            var cubin = new byte[(int)size];
            fixed (byte* pc = cubin) CheckNvrtc(api.nvrtcGetCUBIN(prog, pc), "nvrtcGetCUBIN", null);
            try
            {
                Directory.CreateDirectory(CacheDirectory);
                string tmp = path + "." + Environment.ProcessId + ".tmp";
                File.WriteAllBytes(tmp, cubin);
                File.Move(tmp, path, overwrite: true); // atomic: a concurrent reader never sees half a file
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* no cache: still usable */ }
            return (cubin, false, path);
        }
        finally { api.nvrtcDestroyProgram(&prog); }
    }

    private static void CheckNvrtc(int rc, string call, string? log)
    {
        if (rc != 0)
            throw new CudaException($"NVRTC: {call} failed with {rc}" + (string.IsNullOrEmpty(log) ? "" : $":\n{log}"));
    }
}
