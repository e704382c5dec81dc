using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Engine.Cuda;
using StepAudio2.Lab.Engine.Mlx;
using StepAudio2.Lab.Engine.Reference;

namespace StepAudio2.Lab.Engine;

/// <summary>
/// The one name → backend table, used by the CLI's <c>--backend</c> and the notebooks' <c>Lab.Backend</c>. Each name
/// maps to one shared instance per process (a backend holds its weight caches and, on a device, its context), made
/// on first use.
/// </summary>
public static class Backends
{
    private static readonly Dictionary<string, Func<IBackend>> s_factories = new(StringComparer.OrdinalIgnoreCase)
    {
        ["cpu"] = () => Ops.Default is CpuBackend cpu ? cpu : new CpuBackend(),
        // scalar kernels over device-style storage: the oracle of the other backends (Engine/Reference)
        ["reference"] = () => new ReferenceBackend(),
        // MLX through mlx-c; needs scripts/build-mlx.sh's libraries. Absent, the name cannot be served: an argument error
        // (CLI exit 2) saying where it looked and how to build them
        ["mlx"] = () => MlxLibrary.IsAvailable ? new MlxBackend()
            : throw new ArgumentException($"backend 'mlx' is not available: {MlxLibrary.UnavailableReason}"),
        // one NVIDIA GPU (driver API + NVRTC + cuBLAS, found at run time); without one, Get fails with the reason
        ["cuda"] = () => new CudaBackend(CudaPrecision.Fp32),
        ["cuda-bf16"] = () => new CudaBackend(CudaPrecision.Bf16),
    };

    private static readonly Dictionary<string, IBackend> s_instances = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The known names, in the order they are documented.</summary>
    public static IReadOnlyList<string> Names { get { lock (s_factories) return s_factories.Keys.ToArray(); } }

    /// <summary>The shared backend called <paramref name="name"/>; an unknown name fails listing the known ones.</summary>
    public static IBackend Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        lock (s_factories)
        {
            if (s_instances.TryGetValue(name, out var b)) return b;
            if (!s_factories.TryGetValue(name, out var make))
                throw new ArgumentException($"unknown backend '{name}'; known backends: {string.Join(", ", s_factories.Keys)}", nameof(name));
            b = make();
            s_instances[name] = b;
            return b;
        }
    }

    /// <summary>Adds a backend under <paramref name="name"/> (later registrations of a name replace earlier ones).</summary>
    public static void Register(string name, Func<IBackend> factory)
    {
        lock (s_factories)
        {
            s_factories[name] = factory;
            s_instances.Remove(name);
        }
    }
}
