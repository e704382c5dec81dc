using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.RegularExpressions;

namespace StepAudio2.Lab.Cli;

/// <summary>
/// Parse errors as a reader wants them: an unknown option is named itself (System.CommandLine takes <c>--bogus</c> as the
/// text argument and reports the token after it), and a value that does not parse names the option and the kind of value
/// it expects (<c>--rtol expects a number, got 'abc'</c>), never a CLR type such as <c>System.Nullable`1[System.Double]</c>.
/// </summary>
internal static partial class CliErrors
{
    public static IReadOnlyList<string> Messages(ParseResult parse, IReadOnlyList<string> args)
    {
        var command = parse.CommandResult.Command;
        var unknown = UnknownOptions(command, args);
        var messages = new List<string>();
        foreach (var u in unknown)
            messages.Add($"unknown option '{u}' for '{CommandPath(command)}' (its options: '{CommandPath(command)} --help')");
        foreach (var e in parse.Errors)
        {
            // the token an unknown option pushed out of place is not the user's mistake: it is reported above
            if (unknown.Count > 0 && UnrecognizedToken().IsMatch(e.Message)) continue;
            messages.Add(Rewrite(e.Message, command));
        }
        if (messages.Count == 0) messages.AddRange(parse.Errors.Select(e => e.Message));
        return messages;
    }

    /// <summary>Tokens that look like options (<c>-x</c>, <c>--name</c>, <c>--name=value</c>) but are none of the command's.</summary>
    private static List<string> UnknownOptions(Command command, IReadOnlyList<string> args)
    {
        var options = new Dictionary<string, Option>(StringComparer.Ordinal);
        for (Command? c = command; c is not null; c = c.Parents.OfType<Command>().FirstOrDefault())
            foreach (var o in c.Options)
                foreach (var name in o.Aliases.Append(o.Name)) options.TryAdd(name, o);
        var unknown = new List<string>();
        bool valueExpected = false;
        foreach (var arg in args)
        {
            if (arg == "--") break; // everything after is an argument
            string name = arg.Split('=', 2)[0];
            if (options.TryGetValue(name, out var known))
            {
                // a flag (bool) takes a value only as true/false, never a token that looks like an option
                valueExpected = known.Arity.MaximumNumberOfValues > 0 && !arg.Contains('=') && known.ValueType != typeof(bool);
                continue;
            }
            bool looksLikeOption = arg.Length > 1 && arg[0] == '-' && !double.TryParse(arg, NumberStyles.Float, CultureInfo.InvariantCulture, out _);
            if (looksLikeOption && !valueExpected) unknown.Add(name);
            valueExpected = false;
        }
        return unknown;
    }

    private static string Rewrite(string message, Command command)
    {
        var m = CannotParse().Match(message);
        if (!m.Success) return message;
        string token = m.Groups["token"].Value, symbol = m.Groups["symbol"].Value;
        var option = command.Options.FirstOrDefault(o => o.Name == symbol || o.Aliases.Contains(symbol));
        var type = option?.ValueType ?? typeof(object);
        return $"{symbol} expects {Kind(type)}, got '{token}'";
    }

    private static string Kind(Type t)
    {
        t = Nullable.GetUnderlyingType(t) ?? (t.IsArray ? t.GetElementType()! : t);
        if (t == typeof(double) || t == typeof(float) || t == typeof(decimal)) return "a number";
        if (t == typeof(int) || t == typeof(long) || t == typeof(short) || t == typeof(uint) || t == typeof(ulong)) return "a whole number";
        if (t == typeof(bool)) return "true or false";
        if (t.IsEnum) return "one of " + string.Join(", ", Enum.GetNames(t).Select(n => n.ToLowerInvariant()));
        return "a value";
    }

    private static string CommandPath(Command command)
    {
        var names = new List<string>();
        for (Command? c = command; c is not null; c = c.Parents.OfType<Command>().FirstOrDefault())
            names.Insert(0, c is RootCommand ? "steplab" : c.Name);
        return string.Join(" ", names);
    }

    [GeneratedRegex("^Cannot parse argument '(?<token>.*)' for (?:option|command|argument) '(?<symbol>[^']*)'")]
    private static partial Regex CannotParse();

    [GeneratedRegex("^Unrecognized command or argument ")]
    private static partial Regex UnrecognizedToken();
}
