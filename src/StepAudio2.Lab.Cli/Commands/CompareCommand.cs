using System.CommandLine;

namespace StepAudio2.Lab.Cli.Commands;

public static class CompareCommand
{
    public static Command Create(CliOutput ui) => new("compare", "placeholder until the parity toolkit lands");
}
