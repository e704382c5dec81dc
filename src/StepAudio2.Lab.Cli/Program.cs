using StepAudio2.Lab.Cli;

return StepLabCli.Run(args, Console.Out, Console.Error, interactive: !Console.IsOutputRedirected);
