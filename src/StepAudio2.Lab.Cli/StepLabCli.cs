using System.CommandLine;
using System.CommandLine.Invocation;
using StepAudio2.Lab.Cli.Commands;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Cli;

/// <summary>
/// The <c>steplab</c> command line. Exit codes are a public contract: 0 = everything checked passes,
/// 1 = something was checked and failed (a parity failure, an incomplete checkpoint), 2 = bad input or usage.
/// </summary>
public static class StepLabCli
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int BadInput = 2;

    /// <summary>The commands that run a model and so take <c>--backend</c>.</summary>
    public static readonly IReadOnlySet<string> ModelCommands = new HashSet<string> { "trace", "report", "transcribe", "chat", "token2wav", "synthesize", "s2st" };

    /// <summary>
    /// <c>--backend NAME</c> (default cpu): the command runs inside <see cref="Ops.Use"/> of that backend, so every model it
    /// loads belongs to it; an unknown name is bad input (exit 2) listing the known ones.
    /// </summary>
    private static void AddBackendOption(Command command)
    {
        var option = new Option<string>("--backend")
        {
            Description = $"where the model runs: {string.Join(" | ", Backends.Names)} (default: cpu)",
            DefaultValueFactory = _ => "cpu",
        };
        command.Options.Add(option);
        var precision = new Option<string>("--precision")
        {
            Description = "arithmetic of a GPU backend: fp32 (TF32 off, for parity) | bf16 (bf16 weights) (default: fp32)",
            DefaultValueFactory = _ => "fp32",
        };
        command.Options.Add(precision);
        var inner = command.Action as SynchronousCommandLineAction
            ?? throw new InvalidOperationException($"command '{command.Name}' has no synchronous action");
        command.SetAction((ParseResult p) =>
        {
            using var scope = Ops.Use(Backends.Get(BackendName(p.GetValue(option)!, p.GetValue(precision)!)));
            return inner.Invoke(p);
        });
    }

    /// <summary>The backend table's name for <c>--backend NAME --precision P</c>: fp32 is the backend itself, bf16 its
    /// <c>NAME-bf16</c> entry (<c>cuda-bf16</c>); a backend without one, or another precision, is bad input.</summary>
    public static string BackendName(string backend, string precision) => precision.ToLowerInvariant() switch
    {
        "fp32" => backend,
        "bf16" when backend.EndsWith("-bf16", StringComparison.OrdinalIgnoreCase) => backend,
        "bf16" => Backends.Names.Contains(backend + "-bf16", StringComparer.OrdinalIgnoreCase) ? backend + "-bf16"
            : throw new ArgumentException($"--precision bf16: backend '{backend}' has no bf16 mode (backends with one: {string.Join(", ", Backends.Names.Where(n => n.EndsWith("-bf16")).Select(n => n[..^5]))})"),
        _ => throw new ArgumentException($"--precision '{precision}' is not one of fp32, bf16"),
    };

    /// <summary>Runs one command line; <paramref name="interactive"/> enables progress bars and colour; <paramref name="stdin"/> defaults to the console.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, bool interactive = false, TextReader? stdin = null)
    {
        // Everything printed passes a filter for terminal control characters (file names, tensor names, model text).
        stdout = stdout as TerminalSafeWriter ?? new TerminalSafeWriter(stdout);
        stderr = stderr as TerminalSafeWriter ?? new TerminalSafeWriter(stderr);
        var ui = new CliOutput(stdout, stderr, interactive) { In = stdin ?? Console.In };
        var root = new RootCommand("StepAudio2.Lab: inspect Step-Audio 2 checkpoints and prove a port equal to PyTorch, module by module.")
        {
            InspectCommand.Create(ui),
            CompareCommand.Create(ui),
            MelCommand.Create(ui),
            FeaturesCommand.Create(ui),
            TraceCommand.Create(ui),
            ReportCommand.Create(ui),
            TokenizeCommand.Create(ui),
            TranscribeCommand.Create(ui),
            ChatCommand.Create(ui),
            Token2WavCommand.Create(ui),
            SynthesizeCommand.Create(ui),
            S2stCommand.Create(ui),
            QuantizeCommand.Create(ui),
        };
        foreach (var command in root.Subcommands.Where(c => ModelCommands.Contains(c.Name))) AddBackendOption(command);
        // Response files off: System.CommandLine would otherwise replace any '@path' argument — a prompt, a --system
        // text a script passes on — with that file's contents, leaking local files into the model input.
        var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Errors.Count > 0)
        {
            foreach (var message in CliErrors.Messages(parse, args)) stderr.WriteLine($"steplab: {message}");
            stderr.WriteLine("Run 'steplab --help' for usage.");
            return BadInput;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (LabDataException e)
        {
            stderr.WriteLine($"steplab: {e.Message}");
            return BadInput;
        }
        catch (ArgumentException e)
        {
            stderr.WriteLine($"steplab: {e.Message}");
            return BadInput;
        }
        catch (StepAudio2.Lab.Engine.Cuda.CudaUnavailableException e)
        {
            // --backend cuda where no GPU, driver or CUDA library is: the reason names what was looked for and where
            stderr.WriteLine($"steplab: {e.Message}");
            return BadInput;
        }
        catch (StepAudio2.Lab.Engine.Cuda.CudaException e)
        {
            // a CUDA call failed on a present device (kernel compile, launch, out of memory): the call and its code
            stderr.WriteLine($"steplab: {e.Message}");
            return Failed;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"steplab: {e.Message}");
            return BadInput;
        }
        catch (IOException e)
        {
            // A full disk (ENOSPC), a read error, a directory where a file was meant: .NET's message names the path and
            // the reason; the writers are atomic, so no partial output is left behind.
            stderr.WriteLine($"steplab: {e.Message}");
            return BadInput;
        }
    }
}
