using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Torch;

namespace StepAudio2.Lab.Tests.Torch;

public sealed class PickleScannerTests
{
    private static List<PickleGlobal> Scan(byte[] pickle) =>
        PickleScanner.Scan(pickle, TorchPickleAllowList.IsAllowed, "test.pt", "archive/data.pkl");

    private static byte[] P(params object[] parts) =>
        parts.SelectMany(p => p switch
        {
            string s => System.Text.Encoding.ASCII.GetBytes(s),
            byte b => [b],
            int i => [(byte)i],
            byte[] a => a,
            _ => throw new ArgumentException(p.GetType().Name),
        }).ToArray();

    private static byte[] ShortUnicode(string s) => [0x8c, (byte)s.Length, .. System.Text.Encoding.ASCII.GetBytes(s)];

    [Fact]
    public void Real_state_dict_references_only_allow_listed_globals()
    {
        using var zip = System.IO.Compression.ZipFile.OpenRead(TestPaths.Fixture("torch", "state_dict.pt"));
        using var s = zip.GetEntry("state_dict/data.pkl")!.Open();
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        var globals = Scan(ms.ToArray()).Select(g => g.ToString()).Distinct().Order().ToList();
        Assert.Equal(
            ["collections.OrderedDict", "torch.BFloat16Storage", "torch.BoolStorage", "torch.ByteStorage", "torch.DoubleStorage",
             "torch.FloatStorage", "torch.HalfStorage", "torch.IntStorage", "torch.LongStorage", "torch._utils._rebuild_tensor_v2"],
            globals);
    }

    [Fact]
    public void Stack_global_is_resolved_through_literals_and_memo()
    {
        // proto 4: 'torch' MEMOIZE 'Size' MEMOIZE STACK_GLOBAL, then again via BINGET of the memoized strings.
        var ok = P(0x80, 4, ShortUnicode("torch"), 0x94, ShortUnicode("Size"), 0x94, 0x93, "0", "h", 0, "h", 1, 0x93, ".");
        Assert.Equal(["torch.Size", "torch.Size"], Scan(ok).Select(g => g.ToString()));

        var evil = P(0x80, 4, ShortUnicode("torch"), 0x94, ShortUnicode("os"), 0x94, ShortUnicode("system"), 0x94, "h", 1, "h", 2, 0x93, ".");
        Assert.Equal("os.system", Assert.Throws<UnsafePickleException>(() => Scan(evil)).Global);
    }

    [Fact]
    public void Stack_global_with_operands_it_cannot_prove_is_refused()
    {
        // DUP makes the operands non-literal for the scanner (a real unpickler would resolve torch.torch).
        var dup = P(0x80, 4, ShortUnicode("torch"), "2", 0x93, ".");
        Assert.Contains("not string literals", Assert.Throws<TorchCheckpointException>(() => Scan(dup)).Message);
        // Escaped text strings are deliberately not interpreted.
        var text = P(0x80, 4, "Vos\n", "Vsystem\n", 0x93, ".");
        Assert.Throws<TorchCheckpointException>(() => Scan(text));
    }

    [Fact]
    public void Inst_and_ext_opcodes_are_refused()
    {
        var inst = P("(", "ios\nsystem\n", ".");
        Assert.Equal("os.system", Assert.Throws<UnsafePickleException>(() => Scan(inst)).Global);
        var ext = P(0x80, 2, 0x82, 1, ".");
        Assert.Contains("extension registry", Assert.Throws<TorchCheckpointException>(() => Scan(ext)).Message);
    }

    [Theory]
    [InlineData(new byte[] { 0x80, 2, (byte)'N' })] // no STOP
    [InlineData(new byte[] { 0x80, 2, (byte)'X', 200, 0, 0, 0, (byte)'a', (byte)'.' })] // length past the end
    [InlineData(new byte[] { 0x80, 2, (byte)'X', 0xff, 0xff, 0xff, 0xff, (byte)'.' })] // negative length
    [InlineData(new byte[] { 0x80, 2, (byte)'c', (byte)'t', (byte)'o' })] // unterminated GLOBAL
    [InlineData(new byte[] { 0x80, 2, 0xfe, (byte)'.' })] // unknown opcode
    [InlineData(new byte[] { 0x80, 9, (byte)'.' })] // future protocol
    public void Malformed_pickles_are_typed_errors(byte[] pickle)
    {
        var ex = Assert.Throws<TorchCheckpointException>(() => Scan(pickle));
        Assert.Equal("archive/data.pkl", ex.Key);
        Assert.Contains("test.pt", ex.Message);
    }
}
