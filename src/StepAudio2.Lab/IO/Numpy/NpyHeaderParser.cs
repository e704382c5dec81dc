using System.Globalization;
using System.Text;

namespace StepAudio2.Lab.IO.Numpy;

/// <summary>
/// Strict parser for the Python dict literal in a .npy header, e.g. <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (2, 3), }</c>.
/// numpy evaluates it with <c>ast.literal_eval</c>; we accept only the subset numpy writes (quoted strings, True/False,
/// decimal integers, tuples of integers, optional trailing commas, whitespace), so a hostile header can never make us
/// build anything beyond three small fields. Anything else is reported with the character position at fault.
/// </summary>
internal sealed class NpyHeaderParser
{
    private abstract record Literal(int Position);
    private sealed record StrLit(int Position, string Value) : Literal(Position);
    private sealed record BoolLit(int Position, bool Value) : Literal(Position);
    private sealed record IntLit(int Position, long Value) : Literal(Position);
    private sealed record TupleLit(int Position, long[] Values) : Literal(Position);

    /// <summary>The three fields numpy requires, unvalidated beyond their literal types.</summary>
    internal readonly record struct Fields(string Descr, int DescrPosition, bool FortranOrder, long[] Shape, int ShapePosition);

    private readonly string _text;
    private readonly Func<int, string, Exception> _fail;
    private int _pos;

    private NpyHeaderParser(string text, Func<int, string, Exception> fail)
    {
        _text = text;
        _fail = fail;
    }

    /// <param name="fail">Builds the exception to throw for a fault at a character position of <paramref name="text"/>.</param>
    public static Fields Parse(string text, Func<int, string, Exception> fail) => new NpyHeaderParser(text, fail).ParseDict();

    private Exception Fail(int pos, string fault) => _fail(pos, fault);

    private Fields ParseDict()
    {
        SkipWhitespace();
        if (!TryConsume('{')) throw Fail(_pos, $"header is not a Python dict literal: expected '{{', found {Describe(_pos)}");
        var entries = new Dictionary<string, Literal>(StringComparer.Ordinal);
        var keyPositions = new Dictionary<string, int>(StringComparer.Ordinal);
        while (true)
        {
            SkipWhitespace();
            if (TryConsume('}')) break;
            int keyPos = _pos;
            if (Peek() is not ('\'' or '"')) throw Fail(_pos, $"expected a quoted key or '}}', found {Describe(_pos)}");
            string key = ParseString();
            SkipWhitespace();
            if (!TryConsume(':')) throw Fail(_pos, $"expected ':' after key '{key}', found {Describe(_pos)}");
            SkipWhitespace();
            var value = ParseValue();
            if (!entries.TryAdd(key, value)) throw Fail(keyPos, $"duplicate key '{key}' in header");
            keyPositions[key] = keyPos;
            SkipWhitespace();
            if (TryConsume(',')) continue;
            if (TryConsume('}')) break;
            throw Fail(_pos, $"expected ',' or '}}' after the value of '{key}', found {Describe(_pos)}");
        }
        int closePos = _pos - 1;
        SkipWhitespace();
        if (_pos < _text.Length) throw Fail(_pos, $"unexpected {Describe(_pos)} after the header dict");

        foreach (var key in entries.Keys)
            if (key is not ("descr" or "fortran_order" or "shape"))
                throw Fail(keyPositions[key], $"unexpected key '{key}' in header (a .npy header has exactly 'descr', 'fortran_order' and 'shape')");
        foreach (var required in new[] { "descr", "fortran_order", "shape" })
            if (!entries.ContainsKey(required)) throw Fail(closePos, $"header lacks the '{required}' key");

        var descr = entries["descr"] as StrLit
            ?? throw Fail(entries["descr"].Position, "'descr' must be a string; structured and sub-array dtypes are not supported");
        var fortran = entries["fortran_order"] as BoolLit
            ?? throw Fail(entries["fortran_order"].Position, "'fortran_order' must be True or False");
        var shape = entries["shape"] as TupleLit
            ?? throw Fail(entries["shape"].Position, entries["shape"] is IntLit i
                ? $"'shape' must be a tuple of integers, found the integer {i.Value} (a 1-d shape is written '({i.Value},)')"
                : "'shape' must be a tuple of integers");
        return new Fields(descr.Value, descr.Position, fortran.Value, shape.Values, shape.Position);
    }

    private Literal ParseValue()
    {
        int start = _pos;
        char c = Peek();
        switch (c)
        {
            case '\'' or '"':
                return new StrLit(start, ParseString());
            case '(':
                return ParseTuple();
            case '-' or (>= '0' and <= '9'):
                return new IntLit(start, ParseInt());
            case '[':
                throw Fail(start, "lists are not supported in a .npy header (structured dtypes are not supported)");
            case '{':
                throw Fail(start, "nested dicts are not supported in a .npy header");
        }
        if (char.IsAsciiLetter(c) || c == '_')
        {
            while (_pos < _text.Length && (char.IsAsciiLetterOrDigit(_text[_pos]) || _text[_pos] == '_')) _pos++;
            string name = _text[start.._pos];
            return name switch
            {
                "True" => new BoolLit(start, true),
                "False" => new BoolLit(start, false),
                _ => throw Fail(start, $"unknown name '{Truncate(name)}' in header (only True and False are allowed)"),
            };
        }
        throw Fail(start, $"expected a value, found {Describe(start)}");
    }

    private TupleLit ParseTuple()
    {
        int start = _pos;
        _pos++; // '('
        var values = new List<long>();
        bool sawComma = false;
        while (true)
        {
            SkipWhitespace();
            if (TryConsume(')')) break;
            if (Peek() is not ('-' or (>= '0' and <= '9')))
                throw Fail(_pos, $"expected an integer or ')' in tuple, found {Describe(_pos)} (only tuples of integers are supported)");
            values.Add(ParseInt());
            SkipWhitespace();
            if (TryConsume(',')) { sawComma = true; continue; }
            if (TryConsume(')')) break;
            throw Fail(_pos, $"expected ',' or ')' in tuple, found {Describe(_pos)}");
        }
        // Python: "(3)" is the integer 3, not a tuple; keep that meaning so 'shape': (3) is rejected like numpy does.
        if (values.Count == 1 && !sawComma) throw Fail(start, $"'({values[0]})' is an integer in Python, not a tuple; a 1-d shape is written '({values[0]},)'");
        return new TupleLit(start, values.ToArray());
    }

    private long ParseInt()
    {
        int start = _pos;
        if (Peek() == '-') _pos++;
        int digitsStart = _pos;
        while (_pos < _text.Length && char.IsAsciiDigit(_text[_pos])) _pos++;
        int digits = _pos - digitsStart;
        if (digits == 0) throw Fail(_pos, $"expected digits after '-', found {Describe(_pos)}");
        if (digits > 1 && _text[digitsStart] == '0') throw Fail(start, $"integer literal '{Truncate(_text[start.._pos])}' has a leading zero (not valid Python)");
        if (_pos < _text.Length && (char.IsAsciiLetter(_text[_pos]) || _text[_pos] is '_' or '.'))
            throw Fail(_pos, $"unexpected {Describe(_pos)} in integer literal (only plain decimal integers are supported)");
        string literal = _text[start.._pos];
        if (!long.TryParse(literal, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value))
            throw Fail(start, $"integer literal '{Truncate(literal)}' is out of range");
        return value;
    }

    private string ParseString()
    {
        int start = _pos;
        char quote = _text[_pos++];
        var sb = new StringBuilder();
        while (true)
        {
            if (_pos >= _text.Length || _text[_pos] == '\n') throw Fail(start, "unterminated string literal in header");
            char c = _text[_pos++];
            if (c == quote) return sb.ToString();
            if (c != '\\') { sb.Append(c); continue; }
            if (_pos >= _text.Length) throw Fail(start, "unterminated string literal in header");
            char e = _text[_pos++];
            sb.Append(e switch
            {
                '\\' or '\'' or '"' => e,
                'n' => '\n',
                't' => '\t',
                _ => throw Fail(_pos - 2, $"unsupported escape '\\{e}' in string literal"),
            });
            if (sb.Length > 4096) throw Fail(start, "string literal longer than 4096 characters");
        }
    }

    private void SkipWhitespace()
    {
        while (_pos < _text.Length && _text[_pos] is ' ' or '\t' or '\n' or '\r' or '\f' or '\v') _pos++;
    }

    private char Peek() => _pos < _text.Length ? _text[_pos] : '\0';

    private bool TryConsume(char c)
    {
        if (_pos < _text.Length && _text[_pos] == c) { _pos++; return true; }
        return false;
    }

    private string Describe(int pos)
    {
        if (pos >= _text.Length) return "end of header";
        char c = _text[pos];
        return c is >= ' ' and < '\x7f' ? $"'{c}'" : $"character U+{(int)c:X4}";
    }

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
