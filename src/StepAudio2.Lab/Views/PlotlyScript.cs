using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Views;

/// <summary>
/// The plotly.js bundle for offline pages, read as bytes from the manifest resource that Plotly.NET.dll embeds. The assembly
/// is read as metadata only (never loaded or executed), so no FSharp.Core binding is involved.
/// </summary>
public static class PlotlyScript
{
    /// <summary>The resource Plotly.NET 6.0.0 embeds (plotly.js 2.28.0).</summary>
    public const string ResourceName = "Plotly.NET.plotly-2.28.0.min.js";

    /// <summary>The plotly.js source embedded in the assembly file <paramref name="assemblyPath"/>.</summary>
    public static string ReadFromAssembly(string assemblyPath, string resourceName = ResourceName)
    {
        using var fs = new FileStream(assemblyPath, FileMode.Open, FileAccess.Read, FileShare.Read);
        using var pe = new PEReader(fs);
        try
        {
            return Read(pe, assemblyPath, resourceName);
        }
        catch (BadImageFormatException e)
        {
            throw new LabDataException(assemblyPath, $"not a readable .NET assembly: {e.Message}", resourceName, inner: e);
        }
    }

    private static string Read(PEReader pe, string assemblyPath, string resourceName)
    {
        if (!pe.HasMetadata) throw new LabDataException(assemblyPath, "not a .NET assembly (no metadata)");
        var md = pe.GetMetadataReader();
        foreach (var handle in md.ManifestResources)
        {
            var res = md.GetManifestResource(handle);
            if (!res.Implementation.IsNil || md.GetString(res.Name) != resourceName) continue;
            var dir = pe.PEHeaders.CorHeader!.ResourcesDirectory;
            if (!pe.PEHeaders.TryGetDirectoryOffset(dir, out _))
                throw new LabDataException(assemblyPath, "resources directory is outside the file", resourceName);
            var block = pe.GetSectionData(dir.RelativeVirtualAddress);
            long start = res.Offset;
            if (start < 0 || start + 4 > block.Length) throw new LabDataException(assemblyPath, "resource offset outside the resources directory", resourceName, start);
            var reader = block.GetReader((int)start, block.Length - (int)start);
            int length = reader.ReadInt32();
            if (length < 0 || length > reader.RemainingBytes) throw new LabDataException(assemblyPath, $"resource length {length} exceeds the resources directory", resourceName, start);
            return Encoding.UTF8.GetString(reader.ReadBytes(length));
        }
        throw new LabDataException(assemblyPath, "no such manifest resource", resourceName);
    }

    /// <summary>
    /// The bundle as the body of an inline <c>&lt;script&gt;</c>: any <c>&lt;/script</c> inside string literals is split
    /// (<c>&lt;\/script</c>, the same string in JavaScript) so it cannot end the element early.
    /// </summary>
    public static string ForInlineScript(string source) =>
        source.Replace("</script", "<\\/script", StringComparison.OrdinalIgnoreCase).Replace("<!--", "<\\!--", StringComparison.Ordinal);
}
