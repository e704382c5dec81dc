using Spectre.Console;

namespace StepAudio2.Lab.Cli;

/// <summary>Where commands write: plain text when redirected (CI, pipes, tests), Spectre progress bars on a terminal.</summary>
public sealed class CliOutput(TextWriter stdout, TextWriter stderr, bool interactive)
{
    public TextWriter Out { get; } = stdout;
    public TextWriter Error { get; } = stderr;
    public bool Interactive { get; } = interactive;

    /// <summary>Where interactive commands (chat) read their lines.</summary>
    public TextReader In { get; init; } = Console.In;

    /// <summary>Runs <paramref name="work"/> with a progress reporter: a live bar on a terminal, nothing otherwise.</summary>
    public T WithProgress<T>(string title, Func<IProgress<(int Done, int Total, string Item)>, T> work)
    {
        if (!Interactive) return work(new Progress<(int, int, string)>(_ => { }));
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(title, maxValue: 1);
                result = work(new SyncProgress(p =>
                {
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = p.Done;
                    task.Description = $"{title} {Markup.Escape(Shorten(p.Item, 40))}";
                }));
            });
        return result;
    }

    private static string Shorten(string s, int n) => s.Length <= n ? s : "…" + s[^(n - 1)..];

    /// <summary>Reports synchronously on the calling thread (System.Progress posts to the thread pool).</summary>
    private sealed class SyncProgress(Action<(int Done, int Total, string Item)> report) : IProgress<(int Done, int Total, string Item)>
    {
        public void Report((int Done, int Total, string Item) value) => report(value);
    }
}
