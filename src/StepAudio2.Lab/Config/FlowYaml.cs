using System.Globalization;
using System.Text.RegularExpressions;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Config;

/// <summary>A node of the flow.yaml subset, with the 1-based line it starts on.</summary>
public abstract record YamlNode(int Line);

/// <summary>Kinds of plain values the subset knows (resolved as PyYAML's YAML 1.1 resolver would).</summary>
public enum YamlScalarKind { Int, Float, Bool, String }

/// <summary>A scalar: <see cref="Text"/> is the unquoted text (for strings) or the literal as written.</summary>
public sealed record YamlScalar(int Line, string Text, YamlScalarKind Kind) : YamlNode(Line);

/// <summary>A block mapping, optionally tagged <c>!new:&lt;class&gt;</c> (HyperPyYAML's object constructor).</summary>
public sealed record YamlMapping(int Line, string? Tag, IReadOnlyList<KeyValuePair<string, YamlNode>> Entries) : YamlNode(Line);

/// <summary>
/// A strict reader for the YAML subset that <c>token2wav/flow.yaml</c> uses: block mappings by indentation, scalars
/// (ints, floats with a dot as PyYAML resolves them, bools, quoted strings), <c>!new:</c> class tags and comments.
/// Anything else (lists, flow collections, anchors, other tags, unquoted strings, tabs, duplicate keys) is a
/// <see cref="ConfigException"/> naming the file and line, so a value is never silently read differently from HyperPyYAML.
/// </summary>
public static partial class FlowYaml
{
    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*$")] private static partial Regex KeyRegex();
    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")] private static partial Regex ClassRegex();
    [GeneratedRegex(@"^[-+]?(0|[1-9][0-9]*)$")] private static partial Regex IntRegex();
    // PyYAML's float needs a dot; an exponent needs a sign ("1e-5" is a string there, so it is rejected here)
    [GeneratedRegex(@"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+][0-9]+)?$")] private static partial Regex FloatRegex();

    private const int MaxBytes = 1 << 20;

    /// <summary>Reads and parses a file (at most 1 MiB).</summary>
    public static YamlMapping Load(string path)
    {
        if (!File.Exists(path)) throw new ConfigException(path, "file not found");
        long length = new FileInfo(path).Length;
        if (length > MaxBytes) throw new ConfigException(path, $"{length} bytes is too large for a config file");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses YAML text into its root mapping; <paramref name="file"/> names it in errors.</summary>
    public static YamlMapping Parse(string text, string file)
    {
        var lines = text.Replace("\r\n", "\n").Split('\n');
        var root = new Builder(0, null, -1);
        var stack = new List<(int Indent, Builder Map)>();
        Builder? opened = null; // a "key:" line whose entries must follow, indented deeper
        int openedIndent = -1;
        for (int i = 0; i < lines.Length; i++)
        {
            int lineNo = i + 1;
            string raw = lines[i];
            int indent = 0;
            while (indent < raw.Length && raw[indent] == ' ') indent++;
            if (indent < raw.Length && raw[indent] == '\t') throw Fail(file, lineNo, null, "tab in indentation (YAML allows spaces only)");
            string content = StripComment(raw[indent..], file, lineNo).TrimEnd();
            if (content.Length == 0) continue;
            if (content.Contains('\t')) throw Fail(file, lineNo, null, "tab character outside a quoted string");

            Builder target;
            if (opened is not null)
            {
                if (indent <= openedIndent) throw Fail(file, opened.Line, opened.Key, "mapping has no entries (an empty value is not supported)");
                stack.Add((indent, opened));
                target = opened;
                opened = null;
            }
            else if (stack.Count == 0)
            {
                if (indent != 0) throw Fail(file, lineNo, null, "the first entry must not be indented");
                stack.Add((0, root));
                target = root;
            }
            else
            {
                while (stack.Count > 0 && indent < stack[^1].Indent) stack.RemoveAt(stack.Count - 1);
                if (stack.Count == 0 || indent != stack[^1].Indent)
                    throw Fail(file, lineNo, null, $"indentation of {indent} spaces matches no enclosing mapping");
                target = stack[^1].Map;
            }

            int colon = content.IndexOf(':');
            if (colon <= 0) throw Fail(file, lineNo, null, $"expected 'key: value', found '{Clip(content)}'");
            string key = content[..colon];
            if (!KeyRegex().IsMatch(key)) throw Fail(file, lineNo, null, $"unsupported key '{Clip(key)}' (plain identifiers only)");
            string path = target.Key is null ? key : $"{target.Key}.{key}";
            if (target.Entries.Any(e => e.Key == key)) throw Fail(file, lineNo, path, "duplicate key");
            if (colon + 1 < content.Length && content[colon + 1] != ' ')
                throw Fail(file, lineNo, path, "a ':' after a key must be followed by a space or the end of the line");
            string rest = content[(colon + 1)..].Trim();

            if (rest.Length == 0 || rest.StartsWith('!'))
            {
                string? tag = null;
                if (rest.Length > 0)
                {
                    if (!rest.StartsWith("!new:", StringComparison.Ordinal))
                        throw Fail(file, lineNo, path, $"unsupported tag '{Clip(rest)}' (only !new:<class> is understood)");
                    tag = rest["!new:".Length..];
                    if (!ClassRegex().IsMatch(tag)) throw Fail(file, lineNo, path, $"'{Clip(tag)}' is not a dotted class name (arguments on the tag line are not supported)");
                }
                var child = new Builder(lineNo, tag, indent) { Key = path };
                target.Entries.Add(new(key, child));
                opened = child;
                openedIndent = indent;
            }
            else
                target.Entries.Add(new(key, ParseScalar(rest, file, lineNo, path)));
        }
        if (opened is not null) throw Fail(file, opened.Line, opened.Key, "mapping has no entries (an empty value is not supported)");
        if (root.Entries.Count == 0) throw new ConfigException(file, "no entries (empty file)");
        return root.Build();
    }

    private static YamlScalar ParseScalar(string s, string file, int line, string path)
    {
        char c0 = s[0];
        if (c0 == '\'' || c0 == '"')
        {
            var sb = new System.Text.StringBuilder();
            int i = 1;
            for (; i < s.Length; i++)
            {
                char c = s[i];
                if (c == c0)
                {
                    if (c0 == '\'' && i + 1 < s.Length && s[i + 1] == '\'') { sb.Append('\''); i++; continue; }
                    break;
                }
                if (c0 == '"' && c == '\\')
                {
                    if (i + 1 >= s.Length || s[i + 1] is not ('"' or '\\'))
                        throw Fail(file, line, path, "unsupported escape in a double-quoted string (only \\\" and \\\\)");
                    sb.Append(s[++i]);
                    continue;
                }
                sb.Append(c);
            }
            if (i >= s.Length) throw Fail(file, line, path, "unterminated quoted string (multi-line strings are not supported)");
            if (i != s.Length - 1) throw Fail(file, line, path, $"text after the closing quote: '{Clip(s[(i + 1)..])}'");
            return new YamlScalar(line, sb.ToString(), YamlScalarKind.String);
        }
        if (s is "true" or "True" or "TRUE" or "false" or "False" or "FALSE") return new YamlScalar(line, s, YamlScalarKind.Bool);
        if (IntRegex().IsMatch(s)) return new YamlScalar(line, s, YamlScalarKind.Int);
        if (FloatRegex().IsMatch(s)) return new YamlScalar(line, s, YamlScalarKind.Float);
        if ("[{&*|>-%@`".Contains(c0) || c0 == '!')
            throw Fail(file, line, path, $"unsupported YAML syntax '{Clip(s)}' (lists, flow collections, anchors, aliases and block scalars are not part of this subset)");
        throw Fail(file, line, path, $"unsupported value '{Clip(s)}': quote strings; numbers are ints or floats with a dot (as PyYAML reads them)");
    }

    /// <summary>Drops a comment: '#' at the start or after a space, outside quotes.</summary>
    private static string StripComment(string s, string file, int line)
    {
        char quote = '\0';
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (quote != '\0')
            {
                if (c == '\\' && quote == '"') { i++; continue; }
                if (c == quote) quote = '\0';
            }
            else if (c is '\'' or '"') quote = c;
            else if (c == '#' && (i == 0 || s[i - 1] == ' ')) return s[..i];
        }
        return s;
    }

    private static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "…";

    internal static ConfigException Fail(string file, int line, string? key, string fault) => new(file, fault, key, line: line);

    private sealed class Builder(int line, string? tag, int indent)
    {
        public int Line { get; } = line;
        public string? Tag { get; } = tag;
        public int Indent { get; } = indent;
        public string? Key { get; init; }
        public List<KeyValuePair<string, object>> Entries { get; } = [];

        public YamlMapping Build() => new(Line, Tag,
            Entries.Select(e => new KeyValuePair<string, YamlNode>(e.Key, e.Value is Builder b ? b.Build() : (YamlNode)e.Value)).ToList());
    }
}

/// <summary>
/// Strict typed access to one mapping of a parsed YAML file: every read names its key, <see cref="EnsureAllRead"/> rejects
/// keys nobody asked for, and each failure is a <see cref="ConfigException"/> with file, line and dotted key path.
/// </summary>
public sealed class YamlSection
{
    private readonly YamlMapping _map;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    public YamlSection(YamlMapping map, string file, string path)
    {
        _map = map;
        File = file;
        Path = path;
    }

    public string File { get; }
    /// <summary>Dotted key path of this mapping ("" at the root).</summary>
    public string Path { get; }
    public int Line => _map.Line;
    public string? Tag => _map.Tag;

    private string KeyPath(string key) => Path.Length == 0 ? key : $"{Path}.{key}";

    private YamlNode? Find(string key)
    {
        _read.Add(key);
        foreach (var e in _map.Entries) if (e.Key == key) return e.Value;
        return null;
    }

    private YamlScalar Scalar(string key)
    {
        var node = Find(key) ?? throw new ConfigException(File, "required key is missing", KeyPath(key), line: MapLine);
        return node as YamlScalar ?? throw FlowYaml.Fail(File, node.Line, KeyPath(key), "expected a scalar value, found a mapping");
    }

    public bool Has(string key) => _map.Entries.Any(e => e.Key == key);

    /// <summary>The line of <paramref name="key"/>'s entry (the mapping's own line when absent).</summary>
    public int? LineOf(string key)
    {
        foreach (var e in _map.Entries) if (e.Key == key) return e.Value.Line;
        return MapLine;
    }

    /// <summary>The mapping's own line; null for the document root, which has none (it printed as "line 0").</summary>
    private int? MapLine => _map.Line > 0 ? _map.Line : null;

    public int Int(string key, int min = int.MinValue)
    {
        var s = Scalar(key);
        if (s.Kind != YamlScalarKind.Int) throw FlowYaml.Fail(File, s.Line, KeyPath(key), $"expected an integer, found {Describe(s)}");
        if (!int.TryParse(s.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v))
            throw FlowYaml.Fail(File, s.Line, KeyPath(key), $"integer '{s.Text}' is out of range");
        if (v < min) throw FlowYaml.Fail(File, s.Line, KeyPath(key), $"{v} is below the minimum {min}");
        return v;
    }

    public double Float(string key, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        var s = Scalar(key);
        if (s.Kind is not (YamlScalarKind.Float or YamlScalarKind.Int))
            throw FlowYaml.Fail(File, s.Line, KeyPath(key), $"expected a number, found {Describe(s)}");
        double v = double.Parse(s.Text, NumberStyles.Float, CultureInfo.InvariantCulture);
        if (!(v >= min && v <= max)) throw FlowYaml.Fail(File, s.Line, KeyPath(key), $"{s.Text} is outside [{min}, {max}]");
        return v;
    }

    public double FloatOr(string key, double fallback, double min = double.NegativeInfinity, double max = double.PositiveInfinity) =>
        Has(key) ? Float(key, min, max) : Mark(key, fallback);

    public bool Bool(string key)
    {
        var s = Scalar(key);
        if (s.Kind != YamlScalarKind.Bool) throw FlowYaml.Fail(File, s.Line, KeyPath(key), $"expected true or false, found {Describe(s)}");
        return s.Text is "true" or "True" or "TRUE";
    }

    /// <summary>A quoted string that must be one of <paramref name="allowed"/> (the values this port implements).</summary>
    public string String(string key, params string[] allowed)
    {
        var s = Scalar(key);
        if (s.Kind != YamlScalarKind.String) throw FlowYaml.Fail(File, s.Line, KeyPath(key), $"expected a quoted string, found {Describe(s)}");
        if (allowed.Length > 0 && !allowed.Contains(s.Text))
            throw FlowYaml.Fail(File, s.Line, KeyPath(key), $"'{s.Text}' is not supported (expected {string.Join(" or ", allowed.Select(a => $"'{a}'"))})");
        return s.Text;
    }

    /// <summary>A nested mapping; when <paramref name="tag"/> is given it must carry exactly <c>!new:tag</c>.</summary>
    public YamlSection Section(string key, string? tag = null)
    {
        var node = Find(key) ?? throw new ConfigException(File, "required key is missing", KeyPath(key), line: MapLine);
        if (node is not YamlMapping m) throw FlowYaml.Fail(File, node.Line, KeyPath(key), "expected a mapping, found a scalar");
        if (tag is not null && m.Tag != tag)
            throw FlowYaml.Fail(File, m.Line, KeyPath(key), m.Tag is null ? $"expected the tag !new:{tag}" : $"class '{m.Tag}' is not the expected '{tag}'");
        if (tag is null && m.Tag is not null) throw FlowYaml.Fail(File, m.Line, KeyPath(key), $"unexpected tag !new:{m.Tag}");
        return new YamlSection(m, File, KeyPath(key));
    }

    /// <summary>Fails on the first key that is not in <paramref name="keys"/> (called before reading, so a misspelt key is
    /// reported as unknown rather than as the correct key missing).</summary>
    public void AllowOnly(params string[] keys)
    {
        foreach (var e in _map.Entries)
            if (!keys.Contains(e.Key))
                throw FlowYaml.Fail(File, e.Value.Line, KeyPath(e.Key), "unknown key (not a parameter this port understands)");
    }

    /// <summary>Fails on the first key of this mapping that no reader asked for.</summary>
    public void EnsureAllRead()
    {
        foreach (var e in _map.Entries)
            if (!_read.Contains(e.Key))
                throw FlowYaml.Fail(File, e.Value.Line, KeyPath(e.Key), "unknown key (not a parameter this port understands)");
    }

    private double Mark(string key, double v)
    {
        _read.Add(key);
        return v;
    }

    private static string Describe(YamlScalar s) => s.Kind switch
    {
        YamlScalarKind.String => $"the string '{s.Text}'",
        YamlScalarKind.Bool => $"the boolean {s.Text}",
        _ => $"the number {s.Text}",
    };
}
