using System.Text.Json;
using StepAudio2.Lab.Tools;

namespace StepAudio2.Lab.Tests.Tools;

/// <summary>A test tool whose behaviour is a delegate; records the arguments it was called with.</summary>
internal sealed class ScriptedTool(string name, string description, string parametersJson, Func<JsonElement, CancellationToken, Task<string>>? run = null) : ITool
{
    public string Name => name;
    public string Description => description;
    public JsonElement Parameters { get; } = JsonDocument.Parse(parametersJson).RootElement.Clone();
    public List<string> Calls { get; } = [];

    public Task<string> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        Calls.Add(arguments.GetRawText());
        return run is null ? Task.FromResult("ok") : run(arguments, cancellationToken);
    }
}
