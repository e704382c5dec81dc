using StepAudio2.Lab.Engine;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>
/// <see cref="OpsTests"/>' PyTorch cases (reference-data/make_ops_fixtures.py) on the reference backend: its inputs
/// are host tensors mapped from the fixture file (uploaded by the backend), its results device tensors read back
/// through <c>ToHost()</c>, at the same tolerances as the CPU backend.
/// </summary>
[Collection(SharedReferenceBackend.Name)]
public sealed class ReferenceOpsTests(OpsTests.Fixture f) : OpsTests(f, Backends.Get("reference")), IClassFixture<OpsTests.Fixture>;
