using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Safetensors;

/// <summary>Against files and values made by reference-data/make_safetensors_fixtures.py (PyTorch/NumPy).</summary>
public sealed class SafetensorsFixtureTests
{
    [Fact]
    public void ReadsThePythonWrittenFileBitExactly()
    {
        var (metadata, order, tensors, headerLength) = ExpectedFixture.AllDtypes();
        string path = ExpectedFixture.AllDtypesFile;
        byte[] onDisk = File.ReadAllBytes(path);
        var stamp = File.GetLastWriteTimeUtc(path);

        using (var file = SafetensorsFile.Open(path))
        {
            Assert.Equal(metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal), file.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal));
            Assert.Equal(headerLength, file.Header.HeaderLength);
            Assert.Equal(order, file.Entries.Select(e => e.Name));
            Assert.Equal(order, file.Tensors.Select(t => t.Name));
            foreach (var e in file.Entries)
            {
                var want = tensors[e.Name];
                Assert.Equal((want.DType, want.Begin, want.End), (e.DType, e.Begin, e.End));
                Assert.Equal(want.Shape, e.Shape);

                var t = file.Get(e.Name);
                Assert.Equal(want.DType, t.DType);
                Assert.Equal(want.Shape, t.Shape);
                Assert.True(t.Storage.IsMapped);
                Assert.Equal(want.Bytes, t.ContiguousBytes().ToArray());

                if (want.F64Bits is { } bits)
                {
                    var got = t.ToDoubleArray();
                    Assert.Equal(bits.Length, got.Length);
                    for (int i = 0; i < bits.Length; i++)
                    {
                        double w = BitConverter.UInt64BitsToDouble(bits[i]);
                        if (double.IsNaN(w)) Assert.True(double.IsNaN(got[i]), $"{e.Name}[{i}] should be NaN");
                        else Assert.Equal(bits[i], BitConverter.DoubleToUInt64Bits(got[i]));
                    }
                }
                else
                {
                    Assert.Equal(want.Ints, t.ToInt64Array());
                }
            }
        }
        // Reading never modifies the input.
        Assert.Equal(onDisk, File.ReadAllBytes(path));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(path));
    }

    /// <summary>The fixture's tensors as C# tensors; when <paramref name="strided"/>, multi-dimensional ones become non-contiguous views with the same logical values.</summary>
    internal static List<KeyValuePair<string, Tensor>> FixtureTensors(bool strided, bool reverse)
    {
        var (_, order, tensors, _) = ExpectedFixture.AllDtypes();
        var list = new List<KeyValuePair<string, Tensor>>();
        int stridedCount = 0;
        foreach (string name in reverse ? order.Reverse() : order)
        {
            var want = tensors[name];
            var t = Tensor.FromBytes(want.Bytes, want.DType, want.Shape);
            if (strided && t.Rank >= 2 && t.ElementCount > 1)
            {
                // Store the data reversed-axes contiguous, then view it back: logical values unchanged, strides not row-major.
                var axes = Enumerable.Range(0, t.Rank).Reverse().ToArray();
                t = t.Permute(axes).Contiguous().Permute(axes);
                if (!t.IsContiguous) stridedCount++;
            }
            list.Add(KeyValuePair.Create(name, t));
        }
        if (strided) Assert.True(stridedCount >= 5, $"only {stridedCount} tensors became strided views");
        return list;
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void WriterOutputIsByteIdenticalToThePythonFile(bool strided, bool reverse)
    {
        var (metadata, _, _, _) = ExpectedFixture.AllDtypes();
        using var tmp = TestPaths.Temp();
        string path = tmp.File("ours.safetensors");
        SafetensorsWriter.Write(path, FixtureTensors(strided, reverse), metadata);
        Assert.Equal(File.ReadAllBytes(ExpectedFixture.AllDtypesFile), File.ReadAllBytes(path));
    }

    [PythonFact]
    public void PythonReferenceVerifierAcceptsOurFile()
    {
        var (metadata, _, _, _) = ExpectedFixture.AllDtypes();
        using var tmp = TestPaths.Temp();
        string path = tmp.File("ours.safetensors");
        SafetensorsWriter.Write(path, FixtureTensors(strided: true, reverse: true), metadata);

        var (code, output) = PythonFactAttribute.Run(Path.Combine(TestPaths.ReferenceData, "make_safetensors_fixtures.py"), "--verify", path, ExpectedFixture.AllDtypesJson);
        Assert.True(code == 0, output);
        Assert.StartsWith("OK: ", output);
        Assert.Contains("17 tensors match torch bit-exactly; canonical layout", output);
    }

    [PythonFact]
    public void PythonReferenceVerifierRejectsAFileWithOneWrongBit()
    {
        // The control for the test above: the verifier must be able to fail.
        var (metadata, _, _, _) = ExpectedFixture.AllDtypes();
        var tensors = FixtureTensors(strided: false, reverse: false);
        int i = tensors.FindIndex(kv => kv.Key == "model.embed_tokens.weight");
        var bits = tensors[i].Value.AsSpan<ushort>().ToArray();
        bits[5] ^= 1;
        tensors[i] = KeyValuePair.Create(tensors[i].Key, Tensor.FromBFloat16Bits(bits, tensors[i].Value.Shape));
        using var tmp = TestPaths.Temp();
        string path = tmp.File("flipped.safetensors");
        SafetensorsWriter.Write(path, tensors, metadata);

        var (code, output) = PythonFactAttribute.Run(Path.Combine(TestPaths.ReferenceData, "make_safetensors_fixtures.py"), "--verify", path, ExpectedFixture.AllDtypesJson);
        Assert.Equal(1, code);
        Assert.Contains("'model.embed_tokens.weight': values differ from torch", output);
    }
}
