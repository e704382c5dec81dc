using Microsoft.DotNet.Interactive;

namespace StepAudio2.Lab.Interactive;

/// <summary>
/// The kernel extension: the kernel finds it in the package's <c>interactive-extensions/dotnet/</c> folder after
/// <c>#r "nuget: StepAudio2.Lab.Interactive, …"</c>, registers the formatters and prints the engine line.
/// </summary>
public sealed class StepLabKernelExtension : IKernelExtension
{
    /// <inheritdoc />
    public Task OnLoadAsync(Kernel kernel)
    {
        LabFormatters.Register();
        OnnxRuntimeNative.Register(); // the voice-prompt models (S3 tokenizer, CAM++) run on ONNX Runtime's native library
        _ = ChartHost.WarmUpAsync();
        var line = Lab.EngineInfo;
        if (KernelInvocationContext.Current is { } context) context.DisplayAs(line, "text/plain");
        else Console.WriteLine(line);
        return Task.CompletedTask;
    }
}
