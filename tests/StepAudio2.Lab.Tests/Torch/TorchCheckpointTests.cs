using System.Buffers.Binary;
using System.Security.Cryptography;
using CsCheck;
using Razorvine.Pickle;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Torch;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Torch;

public sealed class TorchCheckpointTests
{
    private const string PwnedMarker = "/tmp/steplab-torch-fixture-pwned";

    private static string Fx(string name) => TestPaths.Fixture("torch", name);

    private static DType ParseDType(string name) => name switch
    {
        "f32" => DType.F32, "f16" => DType.F16, "bf16" => DType.BF16, "f64" => DType.F64, "i64" => DType.I64,
        "i32" => DType.I32, "i16" => DType.I16, "i8" => DType.I8, "u8" => DType.U8, "bool" => DType.Bool,
        _ => throw new ArgumentException(name),
    };

    // ------------------------------------------------------------------ good checkpoints

    [Theory]
    [InlineData("state_dict.pt")]
    [InlineData("state_dict_proto4.pt")]
    [InlineData("state_dict_deflated.pt")]
    [InlineData("state_dict_unaligned.pt")]
    public void StateDict_lists_every_key_in_pickle_order_with_dtype_and_shape(string file)
    {
        var expected = ExpectedCheckpoint.Load("state_dict");
        using var ckpt = TorchCheckpoint.Open(Fx(file));

        Assert.Equal(expected.Tensors.Select(t => t.Name), ckpt.Tensors.Select(t => t.Name));
        foreach (var (info, exp) in ckpt.Tensors.Zip(expected.Tensors))
        {
            Assert.Equal(ParseDType(exp.DType), info.DType);
            Assert.Equal(exp.Shape, info.Shape);
            Assert.Equal(exp.Bytes.Length, info.ByteLength);
            Assert.Equal(Fx(file), info.File);
            Assert.True(ckpt.Contains(exp.Name));
        }
        Assert.Equal(file == "state_dict_proto4.pt" ? "state_dict_proto4" : "state_dict", ckpt.ArchiveName);
        Assert.Empty(ckpt.Metadata);
        // The real model's weight-norm keys come through untouched (folding happens elsewhere).
        Assert.Contains(ckpt.Tensors, t => t.Name == "conv.weight_g");
        Assert.Contains(ckpt.Tensors, t => t.Name == "conv.parametrizations.weight.original1");
    }

    [Theory]
    [InlineData("state_dict.pt")]
    [InlineData("state_dict_proto4.pt")]
    [InlineData("state_dict_deflated.pt")]
    [InlineData("state_dict_unaligned.pt")]
    public void StateDict_values_are_bit_exact_including_views(string file)
    {
        var expected = ExpectedCheckpoint.Load("state_dict");
        using var ckpt = TorchCheckpoint.Open(Fx(file));
        foreach (var exp in expected.Tensors)
        {
            var t = ckpt.Get(exp.Name);
            Assert.Equal(exp.Shape, t.Shape);
            Assert.Equal(exp.Stride, t.Strides);
            Assert.Equal(exp.StorageOffset, t.Offset);
            Assert.Equal(exp.Contiguous, t.IsContiguous);
            Assert.Equal(exp.StorageNumel * t.DType.SizeOf(), t.Storage.ByteLength);
            var actual = t.Contiguous().ContiguousBytes().ToArray();
            Assert.True(exp.Bytes.AsSpan().SequenceEqual(actual), $"{file} [{exp.Name}]: bytes differ from torch's t.contiguous()");
        }
    }

    [Fact]
    public void Views_keep_torch_layout_and_shared_storages_share_one_storage_object()
    {
        var expected = ExpectedCheckpoint.Load("state_dict");
        using var ckpt = TorchCheckpoint.Open(Fx("state_dict.pt"));

        var wt = ckpt.Get("w_t");
        Assert.False(wt.IsContiguous);
        Assert.Equal([5, 3], wt.Shape);
        Assert.Equal([1L, 5L], wt.Strides);

        var window = ckpt.Get("window");
        Assert.Equal(2, window.Offset);
        Assert.Equal([1.0f, 1.5f, 2.0f], window.ToFloatArray()); // base = arange(10) * 0.5, base[2:5]

        var scalar = ckpt.Get("scalar");
        Assert.Equal(0, scalar.Rank);
        Assert.Equal(3.25, scalar.GetDouble());

        // Storage identity follows torch's: same storage group <=> same TensorStorage object.
        var byName = expected.Tensors.ToDictionary(t => t.Name);
        var tensors = expected.Tensors.ToDictionary(t => t.Name, t => ckpt.Get(t.Name));
        foreach (var a in expected.Tensors)
            foreach (var b in expected.Tensors)
                Assert.Equal(a.StorageGroup == b.StorageGroup, ReferenceEquals(tensors[a.Name].Storage, tensors[b.Name].Storage));
        Assert.Same(ckpt.Get("shared.a").Storage, ckpt.Get("shared.a_tail").Storage);
        Assert.Equal(3, ckpt.Get("shared.a_tail").Offset);
        Assert.Equal(ckpt.Get("shared.a").ToFloatArray()[3..], ckpt.Get("shared.a_tail").ToFloatArray());
        Assert.Equal(byName["shared.a_2x3"].Bytes, byName["shared.a"].Bytes);
    }

    [Fact]
    public void Stored_members_are_mapped_in_place_not_copied()
    {
        using var ckpt = TorchCheckpoint.Open(Fx("state_dict.pt"));
        byte[] raw = File.ReadAllBytes(Fx("state_dict.pt"));
        foreach (var info in ckpt.Tensors.Where(t => t.ElementCount > 0))
        {
            var t = ckpt.Get(info.Name);
            var storage = Assert.IsType<ZipMemberStorage>(t.Storage);
            Assert.True(storage.IsMapped);
            Assert.Equal(0, storage.ArchiveOffset % 64); // torch.save pads every record to 64 bytes
            Assert.True(raw.AsSpan((int)storage.ArchiveOffset, (int)storage.ByteLength).SequenceEqual(storage.Span(0, (int)storage.ByteLength)));
        }

        using var deflated = TorchCheckpoint.Open(Fx("state_dict_deflated.pt"));
        Assert.IsType<ManagedStorage>(deflated.Get("f32").Storage);
    }

    [Fact]
    public void Nested_dicts_flatten_with_dots_in_pickle_order_and_keep_non_tensor_fields_as_metadata()
    {
        var expected = ExpectedCheckpoint.Load("nested");
        using var ckpt = TorchCheckpoint.Open(Fx("nested.pt"));

        Assert.Equal(expected.Tensors.Select(t => t.Name), ckpt.Tensors.Select(t => t.Name));
        Assert.Equal("generator.ups.0.weight_v", ckpt.Tensors[3].Name);
        foreach (var exp in expected.Tensors)
            Assert.True(exp.Bytes.AsSpan().SequenceEqual(ckpt.Get(exp.Name).Contiguous().ContiguousBytes()), exp.Name);

        var meta = expected.Metadata.EnumerateObject().ToList();
        Assert.Equal(meta.Select(p => p.Name).Order(StringComparer.Ordinal), ckpt.Metadata.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(123456L, ckpt.Metadata["step"]);
        Assert.Equal(24000L, ckpt.Metadata["config.sampling_rate"]);
        Assert.Equal("hift", ckpt.Metadata["config.name"]);
        Assert.Equal(0.5, ckpt.Metadata["config.lr"]);
        Assert.Equal(false, ckpt.Metadata["config.resume"]);
        foreach (var p in meta)
            Assert.Equal(p.Value.ToString(), Convert.ToString(ckpt.Metadata[p.Name], System.Globalization.CultureInfo.InvariantCulture), StringComparer.OrdinalIgnoreCase);
        Assert.False(ckpt.Contains("step"));
    }

    [Fact]
    public void Handmade_pickle_with_shared_storage_reads_correct_values()
    {
        using var tmp = TestPaths.Temp();
        var data = new float[] { 1.5f, -2f, 3f, 4.25f };
        var p = new PickleWriter().Global("collections", "OrderedDict").Op(')').Op('R').Op('(')
            .Str("head").Tensor1D(w => w.Storage("FloatStorage", "0", 4), offset: 0, size: 2)
            .Str("tail").Tensor1D(w => w.Storage("FloatStorage", "0", 4), offset: 2, size: 2)
            .Op('u').Op('.').ToArray();
        PickleWriter.WriteZip(tmp.File("hand.pt"), p, ("0", data.SelectMany(BitConverter.GetBytes).ToArray()));

        using var ckpt = TorchCheckpoint.Open(tmp.File("hand.pt"));
        Assert.Equal(["head", "tail"], ckpt.Tensors.Select(t => t.Name));
        Assert.Equal([1.5f, -2f], ckpt.Get("head").ToFloatArray());
        Assert.Equal([3f, 4.25f], ckpt.Get("tail").ToFloatArray());
        Assert.Same(ckpt.Get("head").Storage, ckpt.Get("tail").Storage);
        Assert.Equal("archive", ckpt.ArchiveName);
    }

    [Fact]
    public void Loading_never_modifies_the_file_and_tensors_die_with_the_checkpoint()
    {
        string path = Fx("state_dict.pt");
        byte[] before = SHA256.HashData(File.ReadAllBytes(path));
        Tensor kept;
        using (var ckpt = TorchCheckpoint.Open(path))
        {
            foreach (var info in ckpt.Tensors) ckpt.Get(info.Name).ToDoubleArray();
            kept = ckpt.Get("f32");
            ckpt.Dispose();
            Assert.Throws<ObjectDisposedException>(() => ckpt.Get("f32"));
        }
        Assert.Throws<ObjectDisposedException>(() => kept.ToFloatArray());
        Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(path)));
    }

    [Fact]
    public void Unknown_tensor_name_is_a_typed_error_naming_the_key()
    {
        using var ckpt = TorchCheckpoint.Open(Fx("state_dict.pt"));
        var ex = Assert.Throws<TorchCheckpointException>(() => ckpt.Get("conv.weight"));
        Assert.Equal("conv.weight", ex.Key);
        Assert.Contains(Fx("state_dict.pt"), ex.Message);
    }

    // ------------------------------------------------------------------ hostile pickles

    [Theory]
    [InlineData("evil_os_system.pt", "os.system")]
    [InlineData("evil_eval.pt", "builtins.eval")]
    [InlineData("evil_stack_global.pt", "posix.system")]
    [InlineData("evil_module.pt", "torch.nn.modules.linear.Linear")]
    public void Globals_outside_the_allow_list_are_refused_before_anything_runs(string file, string global)
    {
        var ex = Assert.Throws<UnsafePickleException>(() => TorchCheckpoint.Open(Fx(file)));
        Assert.Equal(global, ex.Global);
        Assert.Contains(global, ex.Message);
        Assert.Contains(Fx(file), ex.Message);
        Assert.False(File.Exists(PwnedMarker), $"{PwnedMarker} exists: something executed a payload");
    }

    [Fact]
    public void Hostile_global_is_refused_even_when_razorvine_knows_a_constructor_for_it()
    {
        // Razorvine resolves globals through a process-wide registry. Whatever is registered there, the opcode scan
        // runs first: a constructor registered for os.system must never be reached.
        var spy = new SpyConstructor();
        Unpickler.registerConstructor("os", "system", spy);
        Unpickler.registerConstructor("posix", "system", spy);

        Assert.Throws<UnsafePickleException>(() => TorchCheckpoint.Open(Fx("evil_os_system.pt")));
        Assert.Throws<UnsafePickleException>(() => TorchCheckpoint.Open(Fx("evil_stack_global.pt")));
        Assert.Equal(0, spy.Calls);
    }

    private sealed class SpyConstructor : IObjectConstructor
    {
        public int Calls;
        public object construct(object[] args) { Interlocked.Increment(ref Calls); return "called"; }
    }

    [Fact]
    public void View_reaching_past_its_storage_is_refused_naming_the_key()
    {
        using var tmp = TestPaths.Temp();
        var p = new PickleWriter().Op('}').Op('(')
            .Str("x").Tensor1D(w => w.Storage("FloatStorage", "0", 4), offset: 1, size: 4)
            .Op('u').Op('.').ToArray();
        PickleWriter.WriteZip(tmp.File("overrun.pt"), p, ("0", new byte[16]));
        var ex = Assert.Throws<TorchCheckpointException>(() => TorchCheckpoint.Open(tmp.File("overrun.pt")));
        Assert.Equal("x", ex.Key);
        Assert.Contains("beyond storage '0' of 4 elements", ex.Message);
    }

    [Fact]
    public void One_storage_declared_with_two_dtypes_is_refused()
    {
        using var tmp = TestPaths.Temp();
        var p = new PickleWriter().Op('}').Op('(')
            .Str("a").Tensor1D(w => w.Storage("FloatStorage", "0", 4), 0, 4)
            .Str("b").Tensor1D(w => w.Storage("IntStorage", "0", 4), 0, 4)
            .Op('u').Op('.').ToArray();
        PickleWriter.WriteZip(tmp.File("twotypes.pt"), p, ("0", new byte[16]));
        var ex = Assert.Throws<TorchCheckpointException>(() => TorchCheckpoint.Open(tmp.File("twotypes.pt")));
        Assert.Equal("0", ex.Key);
        Assert.Contains("declared as f32", ex.Message);
    }

    [Fact]
    public void Rebuild_with_something_other_than_a_storage_is_refused()
    {
        using var tmp = TestPaths.Temp();
        var p = new PickleWriter().Op('}').Op('(')
            .Str("x").Tensor1D(w => w.Str("not a storage"), 0, 1)
            .Op('u').Op('.').ToArray();
        PickleWriter.WriteZip(tmp.File("nostorage.pt"), p);
        var ex = Assert.Throws<TorchCheckpointException>(() => TorchCheckpoint.Open(tmp.File("nostorage.pt")));
        Assert.Equal("x", ex.Key);
        Assert.Contains("not a storage", ex.Message);
    }

    [Fact]
    public void Calling_a_storage_class_is_refused_as_a_malformed_pickle()
    {
        using var tmp = TestPaths.Temp();
        var p = new PickleWriter().Global("torch", "FloatStorage").Int(3).Op(0x85).Op('R').Op('.').ToArray();
        PickleWriter.WriteZip(tmp.File("call.pt"), p);
        var ex = Assert.Throws<TorchCheckpointException>(() => TorchCheckpoint.Open(tmp.File("call.pt")));
        Assert.Equal("archive/data.pkl", ex.Key);
        Assert.Contains("malformed pickle", ex.Message);
    }

    // ------------------------------------------------------------------ broken archives

    [Fact]
    public void Storage_shorter_than_its_declared_numel_is_refused_naming_the_member()
    {
        var ex = Assert.Throws<TorchCheckpointException>(() => TorchCheckpoint.Open(Fx("bad_numel.pt")));
        Assert.Equal("state_dict/data/0", ex.Key);
        Assert.Contains("declares 4 f32 elements (16 bytes) but its member holds 8 bytes", ex.Message);
        Assert.Contains(Fx("bad_numel.pt"), ex.Message);
    }

    [Fact]
    public void Missing_storage_member_is_refused_naming_it()
    {
        var ex = Assert.Throws<TorchCheckpointException>(() => TorchCheckpoint.Open(Fx("missing_storage.pt")));
        Assert.Equal("state_dict/data/1", ex.Key);
        Assert.Contains("has no data member", ex.Message);
    }

    [Fact]
    public void Truncated_archive_is_a_typed_error()
    {
        var ex = Assert.Throws<TorchCheckpointException>(() => TorchCheckpoint.Open(Fx("truncated.pt")));
        Assert.Contains("truncated", ex.Message);
        Assert.Contains(Fx("truncated.pt"), ex.Message);
    }

    [Fact]
    public void Legacy_format_asks_for_a_zip_resave()
    {
        var ex = Assert.Throws<TorchCheckpointException>(() => TorchCheckpoint.Open(Fx("legacy.pt")));
        Assert.Contains("legacy torch.save format", ex.Message);
        Assert.Contains("_use_new_zipfile_serialization=True", ex.Message);
    }

    [Fact]
    public void Big_endian_checkpoint_is_refused()
    {
        var ex = Assert.Throws<TorchCheckpointException>(() => TorchCheckpoint.Open(Fx("big_endian.pt")));
        Assert.Equal("state_dict/byteorder", ex.Key);
        Assert.Contains("big-endian", ex.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(300)]
    public void Empty_tiny_and_non_zip_files_are_typed_errors(int length)
    {
        using var tmp = TestPaths.Temp();
        File.WriteAllBytes(tmp.File("x.pt"), Enumerable.Range(0, length).Select(i => (byte)(i * 7 + 1)).ToArray());
        Assert.Throws<TorchCheckpointException>(() => TorchCheckpoint.Open(tmp.File("x.pt")));
    }

    [Fact]
    public void Zip64_locator_offset_beyond_long_range_is_a_typed_error()
    {
        // Found by the property test below: a top bit flipped in the zip64 locator's 8-byte record offset made a checked
        // cast throw OverflowException instead of naming the file and the offset.
        byte[] bytes = File.ReadAllBytes(Fx("state_dict.pt"));
        int locator = -1;
        for (int i = bytes.Length - 20; i >= 0 && locator < 0; i--)
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i)) == 0x07064b50) locator = i;
        Assert.True(locator > 0, "the fixture (torch.save) carries a zip64 locator");
        bytes[locator + 15] ^= 0x80; // offset ≥ 2^63
        using var tmp = TestPaths.Temp();
        File.WriteAllBytes(tmp.File("z64.pt"), bytes);
        var e = Assert.Throws<TorchCheckpointException>(() => TorchCheckpoint.Open(tmp.File("z64.pt")));
        Assert.Contains("zip64 field", e.Message);
        Assert.Contains("z64.pt", e.Message);
    }

    [Fact]
    public void Corrupted_or_truncated_checkpoints_fail_only_with_typed_errors()
    {
        byte[] original = File.ReadAllBytes(Fx("state_dict.pt"));
        byte[] deflated = File.ReadAllBytes(Fx("state_dict_deflated.pt"));
        using var tmp = TestPaths.Temp();
        int n = 0;
        Gen.Select(Gen.Bool, Gen.Int[0, int.MaxValue], Gen.Int[1, 8], Gen.Byte)
            .Sample((useDeflated, where, count, value) =>
            {
                var bytes = (byte[])(useDeflated ? deflated : original).Clone();
                string path = tmp.File($"c{Interlocked.Increment(ref n)}.pt");
                if (count == 8) bytes = bytes[..(where % bytes.Length)]; // truncate
                else for (int i = 0; i < count; i++) bytes[(where + i * 131) % bytes.Length] ^= (byte)(value | 1);
                File.WriteAllBytes(path, bytes);
                try
                {
                    using var ckpt = TorchCheckpoint.Open(path);
                    foreach (var info in ckpt.Tensors)
                    {
                        var t = ckpt.Get(info.Name);
                        Assert.Equal(info.ElementCount, t.ToDoubleArray().Length);
                    }
                }
                catch (LabDataException)
                {
                }
                File.Delete(path);
            }, iter: 400, threads: 1);
    }
}
