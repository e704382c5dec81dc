using System.Buffers.Binary;
using System.Text;

namespace StepAudio2.Lab.IO.Torch;

/// <summary>A global (module + qualified name) that a pickle asks the unpickler to resolve.</summary>
internal readonly record struct PickleGlobal(string Module, string Name)
{
    public override string ToString() => Module + "." + Name;
}

/// <summary>
/// Walks every opcode of a pickle without executing any of it, before any unpickler sees the bytes. It rejects
/// globals outside the allow-list (GLOBAL, INST, and STACK_GLOBAL whose operands it can prove are string literals),
/// opcodes that reach globals indirectly (EXT1/2/4) or out-of-band data, unknown opcodes, and any length that runs
/// past the data. Razorvine.Pickle resolves globals through a process-wide registry and silently builds a ClassDict
/// for unknown ones, so this independent walk is the guard that decides what may be constructed.
/// </summary>
internal static class PickleScanner
{
    /// <summary>Scans <paramref name="pickle"/> up to its STOP opcode; returns the globals it references, in order.</summary>
    /// <exception cref="UnsafePickleException">A global is not allowed by <paramref name="isAllowed"/>.</exception>
    /// <exception cref="TorchCheckpointException">The pickle is truncated, malformed or uses a refused opcode.</exception>
    public static List<PickleGlobal> Scan(ReadOnlySpan<byte> pickle, Func<string, string, bool> isAllowed, string file, string member)
    {
        var globals = new List<PickleGlobal>();
        // What the scanner knows about values pushed since the last opcode it does not model: a string literal or
        // null (unknown). STACK_GLOBAL is only accepted when its two operands are both known strings.
        var recent = new Recent();
        var memo = new Dictionary<long, string?>();
        int pos = 0;
        while (true)
        {
            if (pos >= pickle.Length)
                throw Fault(file, member, "pickle ends without a STOP opcode (truncated)", pos);
            int at = pos;
            byte op = pickle[pos++];
            switch (op)
            {
                case (byte)'.': // STOP
                    return globals;

                // ---- string pushes the scanner tracks (UTF-8 only: escaped text forms are left unknown on purpose)
                case 0x8c: // SHORT_BINUNICODE
                    recent.Add(Encoding.UTF8.GetString(Take(pickle, ref pos, Length1(pickle, ref pos, file, member), file, member)));
                    break;
                case (byte)'X': // BINUNICODE
                    recent.Add(Encoding.UTF8.GetString(Take(pickle, ref pos, Length4(pickle, ref pos, file, member), file, member)));
                    break;
                case 0x8d: // BINUNICODE8
                    recent.Add(Encoding.UTF8.GetString(Take(pickle, ref pos, Length8(pickle, ref pos, file, member), file, member)));
                    break;

                // ---- memo: stores leave the stack alone, fetches push what was stored
                case (byte)'p': // PUT
                    Remember(memo, ParseDecimal(Line(pickle, ref pos, file, member), file, member, at), recent);
                    break;
                case (byte)'q': // BINPUT
                    Remember(memo, Take(pickle, ref pos, 1, file, member)[0], recent);
                    break;
                case (byte)'r': // LONG_BINPUT
                    Remember(memo, BinaryPrimitives.ReadInt32LittleEndian(Take(pickle, ref pos, 4, file, member)), recent);
                    break;
                case 0x94: // MEMOIZE
                    Remember(memo, memo.Count, recent);
                    break;
                case (byte)'g': // GET
                    recent.Add(memo.GetValueOrDefault(ParseDecimal(Line(pickle, ref pos, file, member), file, member, at)));
                    break;
                case (byte)'h': // BINGET
                    recent.Add(memo.GetValueOrDefault(Take(pickle, ref pos, 1, file, member)[0]));
                    break;
                case (byte)'j': // LONG_BINGET
                    recent.Add(memo.GetValueOrDefault(BinaryPrimitives.ReadInt32LittleEndian(Take(pickle, ref pos, 4, file, member))));
                    break;
                case 0x95: // FRAME: framing only, no stack effect
                    Take(pickle, ref pos, 8, file, member);
                    break;
                case 0x80: // PROTO
                    if (Take(pickle, ref pos, 1, file, member)[0] > 5)
                        throw Fault(file, member, $"unsupported pickle protocol {pickle[pos - 1]}", at);
                    break;

                // ---- globals
                case (byte)'c': // GLOBAL module\nname\n
                case (byte)'i': // INST module\nname\n (instantiates the class right away)
                {
                    string module = Encoding.UTF8.GetString(Line(pickle, ref pos, file, member));
                    string name = Encoding.UTF8.GetString(Line(pickle, ref pos, file, member));
                    Check(new PickleGlobal(module, name), isAllowed, globals, file);
                    recent.Clear();
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    if (recent.Count < 2 || recent[^1] is null || recent[^2] is null)
                        throw Fault(file, member, "STACK_GLOBAL whose module and name are not string literals; refusing to resolve it", at);
                    Check(new PickleGlobal(recent[^2]!, recent[^1]!), isAllowed, globals, file);
                    recent.Clear();
                    break;
                }

                // ---- refused outright
                case 0x82: case 0x83: case 0x84: // EXT1/EXT2/EXT4 resolve globals through copyreg's extension registry
                    throw Fault(file, member, "pickle uses the extension registry (EXT opcode), which can name any global; refusing", at);
                case (byte)'P': // PERSID with a text id: torch only writes BINPERSID
                    throw Fault(file, member, "text persistent id (PERSID) is not used by torch.save; refusing", at);
                case 0x97: case 0x98: // NEXT_BUFFER, READONLY_BUFFER
                    throw Fault(file, member, "out-of-band pickle buffers are not supported", at);

                // ---- everything else: validate the argument length, forget what is on the stack
                default:
                    SkipArgument(op, pickle, ref pos, file, member, at);
                    recent.Clear();
                    break;
            }
        }
    }

    private static void Check(PickleGlobal global, Func<string, string, bool> isAllowed, List<PickleGlobal> globals, string file)
    {
        if (!isAllowed(global.Module, global.Name)) throw new UnsafePickleException(file, global.ToString());
        globals.Add(global);
    }

    private static void Remember(Dictionary<long, string?> memo, long index, Recent recent) =>
        memo[index] = recent.Count > 0 ? recent[^1] : null;

    /// <summary>The top two tracked stack values (only those can feed STACK_GLOBAL or a memo store).</summary>
    private sealed class Recent
    {
        private string? _below, _top;
        public int Count { get; private set; }
        public string? this[Index i] => (i.IsFromEnd ? i.Value : Count - i.Value) switch { 1 => _top, 2 => _below, _ => null };
        public void Add(string? value) { _below = _top; _top = value; Count = Math.Min(Count + 1, 2); }
        public void Clear() { _below = _top = null; Count = 0; }
    }

    private static void SkipArgument(byte op, ReadOnlySpan<byte> p, ref int pos, string file, string member, int at)
    {
        switch (op)
        {
            // no argument
            case (byte)'(': case (byte)'0': case (byte)'1': case (byte)'2': case (byte)'N': case (byte)'Q': case (byte)'R':
            case (byte)'a': case (byte)'b': case (byte)'d': case (byte)'}': case (byte)'e': case (byte)'l': case (byte)']':
            case (byte)'o': case (byte)'s': case (byte)'t': case (byte)')': case (byte)'u':
            case 0x81: case 0x85: case 0x86: case 0x87: case 0x88: case 0x89: // NEWOBJ TUPLE1-3 NEWTRUE NEWFALSE
            case 0x8f: case 0x90: case 0x91: case 0x92: // EMPTY_SET ADDITEMS FROZENSET NEWOBJ_EX
                return;
            // newline-terminated argument
            case (byte)'F': case (byte)'I': case (byte)'L': case (byte)'S': case (byte)'V':
                Line(p, ref pos, file, member);
                return;
            case (byte)'K': Take(p, ref pos, 1, file, member); return; // BININT1
            case (byte)'M': Take(p, ref pos, 2, file, member); return; // BININT2
            case (byte)'J': Take(p, ref pos, 4, file, member); return; // BININT
            case (byte)'G': Take(p, ref pos, 8, file, member); return; // BINFLOAT
            case 0x8a: Take(p, ref pos, Length1(p, ref pos, file, member), file, member); return; // LONG1
            case 0x8b: Take(p, ref pos, Length4(p, ref pos, file, member), file, member); return; // LONG4
            case (byte)'T': Take(p, ref pos, Length4(p, ref pos, file, member), file, member); return; // BINSTRING
            case (byte)'U': Take(p, ref pos, Length1(p, ref pos, file, member), file, member); return; // SHORT_BINSTRING
            case (byte)'B': Take(p, ref pos, Length4(p, ref pos, file, member), file, member); return; // BINBYTES
            case (byte)'C': Take(p, ref pos, Length1(p, ref pos, file, member), file, member); return; // SHORT_BINBYTES
            case 0x8e: case 0x96: Take(p, ref pos, Length8(p, ref pos, file, member), file, member); return; // BINBYTES8 BYTEARRAY8
            default:
                throw Fault(file, member, $"unknown pickle opcode 0x{op:x2}", at);
        }
    }

    private static int Length1(ReadOnlySpan<byte> p, ref int pos, string file, string member) => Take(p, ref pos, 1, file, member)[0];

    private static int Length4(ReadOnlySpan<byte> p, ref int pos, string file, string member)
    {
        int at = pos;
        int n = BinaryPrimitives.ReadInt32LittleEndian(Take(p, ref pos, 4, file, member));
        return n >= 0 ? n : throw Fault(file, member, $"negative length {n}", at);
    }

    private static int Length8(ReadOnlySpan<byte> p, ref int pos, string file, string member)
    {
        int at = pos;
        long n = BinaryPrimitives.ReadInt64LittleEndian(Take(p, ref pos, 8, file, member));
        return n >= 0 && n <= p.Length - pos ? (int)n : throw Fault(file, member, $"length {n} runs past the end of the pickle", at);
    }

    private static ReadOnlySpan<byte> Take(ReadOnlySpan<byte> p, ref int pos, int count, string file, string member)
    {
        if (count > p.Length - pos)
            throw Fault(file, member, $"argument of {count} bytes runs past the end of the pickle (truncated)", pos);
        var s = p.Slice(pos, count);
        pos += count;
        return s;
    }

    private static ReadOnlySpan<byte> Line(ReadOnlySpan<byte> p, ref int pos, string file, string member)
    {
        int nl = p[pos..].IndexOf((byte)'\n');
        if (nl < 0) throw Fault(file, member, "newline-terminated argument runs past the end of the pickle (truncated)", pos);
        var s = p.Slice(pos, nl);
        pos += nl + 1;
        return s;
    }

    private static long ParseDecimal(ReadOnlySpan<byte> text, string file, string member, int at) =>
        System.Buffers.Text.Utf8Parser.TryParse(text, out int v, out int used) && used == text.Length
            ? v
            : throw Fault(file, member, "memo index is not a decimal integer", at);

    // Offsets here are inside the (possibly compressed) member, not the file, so they go into the text.
    private static TorchCheckpointException Fault(string file, string member, string fault, long offset) =>
        new(file, $"{fault} (pickle byte {offset})", member);
}
