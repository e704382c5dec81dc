using System.Text.Json;

namespace StepAudio2.Lab.Tools;

/// <summary>A function the model may call: an OpenAI-style function spec plus its implementation.</summary>
public interface ITool
{
    /// <summary>The name the model writes on the second line of a <c>&lt;tool_call&gt;</c> block.</summary>
    string Name { get; }

    /// <summary>What the tool does, shown to the model in the <c>tool_json_schemas</c> turn.</summary>
    string Description { get; }

    /// <summary>JSON schema of the arguments object (OpenAI <c>function.parameters</c>).</summary>
    JsonElement Parameters { get; }

    /// <summary>Runs the tool; the returned text is fed back to the model. Failures may throw: the tool loop turns them into error text.</summary>
    Task<string> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken);
}
