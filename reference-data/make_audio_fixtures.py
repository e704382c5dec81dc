#!/usr/bin/python3
"""Deterministic fixtures for the C# audio reader, writer and resampler (src/StepAudio2.Lab/Audio/).

Run with Debian's interpreter (it has torch, torchaudio 0.13.1 and numpy):

    /usr/bin/python3 reference-data/make_audio_fixtures.py

Writes into reference-data/fixtures/audio/ (re-running reproduces every file bit-identically):

* small WAV / RF64 / AIFF / AIFF-C files (a few hundred frames each) with known sample values:
  PCM written by the stdlib `wave` and `aifc` modules where they can, everything else (IEEE float WAV,
  WAVE_FORMAT_EXTENSIBLE, RF64, AIFF-C twos/sowt/fl32/fl64, odd-sized chunks, SSND offsets) by hand with
  `struct`. Expected samples, planar float32 little-endian, go to `<name>.expected.f32`; metadata to
  `formats.json`. Expected floats follow torchaudio's scaling (int/2^(bits-1), WAV uint8 (x-128)/128);
  where torchaudio (sox backend) can read a fixture the script also checks that it decodes the same values.
* `pcm16_quantise_*`: float32 inputs and the int16 values the WAV writer must produce for them.
* `real_speech.json` + `real_speech.ch0_first2000.f32`: the shared clip ../shared/audio/real_speech.aiff
  (AIFF-C 'twos', not copied here) decoded by torchaudio.load and, independently, by a numpy parse.
* resampler parity: `resample.json` and `resample_*.f32`: torchaudio's default windowed-sinc resampler
  (sinc_interp_hann, lowpass_filter_width 6, rolloff 0.99) on a chirp + noise signal (0.5 s, fixed seed) at
  each needed ratio, and on the first second of real_speech.aiff channel 0 at its true rate (22 050 Hz) to
  16 kHz and 24 kHz; plus the kernels themselves for the ratios whose kernels are small.

  Which torchaudio entry point: the official Step-Audio 2 `load_audio` calls
  `torchaudio.transforms.Resample(orig, new)(waveform)`, which builds the kernel in float64 and stores it as
  float32 (docs/model.md §2.1). `torchaudio.functional.resample` (0.13.1) instead builds the kernel in the waveform's
  dtype, i.e. float32 for float32 audio, and its output differs from the transform's by up to ~1e-5 (the
  float32 sin() of arguments up to 6*pi). The outputs stored here are the transform's (the official path);
  each case records the functional-vs-transform difference for information.
"""
import json
import math
import os
import struct
import sys
import warnings
import wave

import numpy as np

warnings.filterwarnings("ignore", category=DeprecationWarning)
import aifc  # noqa: E402  (deprecated in 3.11, still present)

import torch  # noqa: E402
import torchaudio  # noqa: E402
import torchaudio.functional as taf  # noqa: E402
from torchaudio.functional.functional import _get_sinc_resample_kernel  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "audio")
SHARED_AUDIO = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "audio"))
if not os.path.isdir(SHARED_AUDIO):  # worktrees live beside the main checkout: /work/wt-x and /work/shared
    SHARED_AUDIO = "/work/shared/audio"
REAL_SPEECH = os.path.join(SHARED_AUDIO, "real_speech.aiff")

torch.set_num_threads(1)  # deterministic summation order in conv1d


def f32_file(name, arr):
    a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(a.tobytes())
    return name


def ints(rng, n, bits, channels):
    """Random signed ints of `bits`, with both extremes, zero and ±1 at the start of every channel."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    x = rng.integers(lo, hi + 1, size=(channels, n), dtype=np.int64)
    head = np.array([lo, hi, 0, -1, 1, lo + 1, hi - 1], dtype=np.int64)
    x[:, : len(head)] = head
    return x


def interleave(planar):
    return np.ascontiguousarray(planar.T).reshape(-1)


def pack_le(samples, width):
    """Signed ints -> little-endian bytes of `width` bytes each."""
    u = samples.astype(np.int64) & ((1 << (8 * width)) - 1)
    b = np.zeros((len(u), width), dtype=np.uint8)
    for k in range(width):
        b[:, k] = (u >> (8 * k)) & 0xFF
    return b.tobytes()


def pack_be(samples, width):
    u = samples.astype(np.int64) & ((1 << (8 * width)) - 1)
    b = np.zeros((len(u), width), dtype=np.uint8)
    for k in range(width):
        b[:, width - 1 - k] = (u >> (8 * k)) & 0xFF
    return b.tobytes()


def ext80(rate):
    """IEEE 754 80-bit extended big-endian encoding of a positive integer sample rate (exact)."""
    rate = int(rate)
    e = rate.bit_length() - 1
    mant = rate << (63 - e)
    return struct.pack(">HQ", 16383 + e, mant)


def chunk_be(cid, payload):
    data = cid + struct.pack(">I", len(payload)) + payload
    return data + (b"\0" if len(payload) % 2 else b"")


def chunk_le(cid, payload):
    data = cid + struct.pack("<I", len(payload)) + payload
    return data + (b"\0" if len(payload) % 2 else b"")


def pstring(s):
    b = bytes([len(s)]) + s
    return b + (b"\0" if len(b) % 2 else b"")


KSDATAFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")  # GUID bytes after the 2-byte format tag


def wav_bytes(tag, channels, rate, bits, data, extensible=False, valid_bits=None, extra_chunks=b"", fact=None):
    block = channels * ((bits + 7) // 8)
    if extensible:
        sub = struct.pack("<H", tag) + KSDATAFORMAT_TAIL
        mask = (1 << channels) - 1
        fmt = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * block, block, bits)
        fmt += struct.pack("<HHI", 22, valid_bits or bits, mask) + sub
    elif tag == 1:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    else:
        fmt = struct.pack("<HHIIHHH", tag, channels, rate, rate * block, block, bits, 0)
    body = b"WAVE" + chunk_le(b"fmt ", fmt)
    if fact is not None:
        body += chunk_le(b"fact", struct.pack("<I", fact))
    body += extra_chunks + chunk_le(b"data", data)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def aiff_bytes(form, channels, frames, bits, rate, ssnd_payload, comp=None, compname=b"", pre_chunks=b"", ssnd_offset=0):
    comm = struct.pack(">hIh", channels, frames, bits) + ext80(rate)
    if form == b"AIFC":
        comm += comp + pstring(compname)
    body = form
    if form == b"AIFC":
        body += chunk_be(b"FVER", struct.pack(">I", 0xA2805140))
    body += pre_chunks + chunk_be(b"COMM", comm)
    ssnd = struct.pack(">II", ssnd_offset, 0) + b"\xAB" * ssnd_offset + ssnd_payload
    body += chunk_be(b"SSND", ssnd)
    return b"FORM" + struct.pack(">I", len(body)) + body


def torchaudio_check(path, expected, bits, is_float):
    """Decode with torchaudio (sox_io, as the official code would) and compare with our expectation.

    sox carries samples as int32 and, on the way to float, rounds them to 25 significant bits
    (SOX_SAMPLE_TO_FLOAT_32BIT: ((x + 64) & ~127) / 2^31); so 32-bit int and float files agree only to
    ~2^-24, while 8/16/24-bit ints must agree exactly. Our expected values are the exact quotients
    (int / 2^(bits-1), float as stored), which is what torchaudio's other backends return."""
    try:
        w, sr = torchaudio.load(path)
    except Exception as e:  # sox cannot read every variant we test
        return "not readable by torchaudio sox_io: " + str(e).splitlines()[0][:120]
    w = w.numpy()
    if w.shape != expected.shape:
        raise SystemExit(f"{path}: torchaudio shape {w.shape} != expected {expected.shape}")
    d = float(np.max(np.abs(w.astype(np.float64) - expected.astype(np.float64)))) if w.size else 0.0
    tol = 2.0 ** -24 if (is_float or bits == 32) else 0.0
    if d > tol:
        raise SystemExit(f"{path}: torchaudio differs from expected by {d}")
    return f"torchaudio.load agrees (max abs diff {d:.3g})"


def make_formats():
    rng = np.random.default_rng(20250601)
    entries = []

    def add(name, raw, container, codec, bits, channels, rate, expected, writer):
        path = os.path.join(OUT, name)
        if raw is not None:
            with open(path, "wb") as f:
                f.write(raw)
        expected = expected.astype(np.float32)
        exp_name = f32_file(name + ".expected.f32", expected.reshape(-1))
        entries.append(dict(file=name, container=container, codec=codec, bits=bits, channels=channels,
                            sample_rate=rate, frames=int(expected.shape[1]), expected=exp_name, writer=writer,
                            torchaudio=torchaudio_check(path, expected, bits, codec.lower().startswith(('float', 'fl')))))

    # --- WAV PCM through the stdlib wave module ---------------------------------------------------------
    for bits, ch, rate, n in [(8, 1, 8000, 300), (16, 2, 16000, 257), (24, 1, 22050, 301), (32, 2, 48000, 203)]:
        s = ints(rng, n, bits, ch)
        name = f"wav_pcm{bits}_{ch}ch_{rate}.wav"
        inter = interleave(s)
        if bits == 8:
            raw = (inter + 128).astype(np.uint8).tobytes()  # WAV 8-bit PCM is unsigned, offset 128
            expected = s.astype(np.float64) / 128.0
        else:
            raw = pack_le(inter, bits // 8)
            expected = s.astype(np.float64) / float(1 << (bits - 1))
        with wave.open(os.path.join(OUT, name), "wb") as w:
            w.setnchannels(ch)
            w.setsampwidth(bits // 8)
            w.setframerate(rate)
            w.writeframes(raw)
        add(name, None, "WAV", "pcm", bits, ch, rate, expected, "python wave")

    # --- WAV IEEE float, by hand ------------------------------------------------------------------------
    for bits, ch, rate, n in [(32, 2, 24000, 211), (64, 1, 16000, 199)]:
        v = rng.uniform(-1.0, 1.0, size=(ch, n))
        v[:, :4] = [[-1.0, 1.0, 0.0, 0.5]]
        dt = "<f4" if bits == 32 else "<f8"
        raw = interleave(v).astype(dt).tobytes()
        name = f"wav_float{bits}_{ch}ch_{rate}.wav"
        add(name, wav_bytes(3, ch, rate, bits, raw, fact=n), "WAV", "float", bits, ch, rate,
            v.astype(dt).astype(np.float64), "struct")

    # --- WAVE_FORMAT_EXTENSIBLE: 24-bit PCM, 3 channels; float32 mono -----------------------------------
    s = ints(rng, 150, 24, 3)
    add("wav_ext_pcm24_3ch_44100.wav", wav_bytes(1, 3, 44100, 24, pack_le(interleave(s), 3), extensible=True),
        "WAV", "pcm (extensible)", 24, 3, 44100, s / float(1 << 23), "struct")
    v = rng.uniform(-1, 1, size=(1, 160)).astype("<f4")
    add("wav_ext_float32_1ch_16000.wav", wav_bytes(3, 1, 16000, 32, v.reshape(-1).tobytes(), extensible=True),
        "WAV", "float (extensible)", 32, 1, 16000, v.astype(np.float64), "struct")

    # --- WAV PCM16 with an odd-sized LIST chunk (pad byte) before data ---------------------------------
    s = ints(rng, 120, 16, 1)
    lst = chunk_le(b"LIST", b"INFOISFT" + struct.pack("<I", 5) + b"lab\0\0")  # 17-byte payload -> pad
    extra = chunk_le(b"junk", b"xyz")  # 3-byte payload -> pad
    add("wav_pcm16_1ch_16000_oddchunks.wav", wav_bytes(1, 1, 16000, 16, pack_le(s.reshape(-1), 2), extra_chunks=lst + extra),
        "WAV", "pcm", 16, 1, 16000, s / 32768.0, "struct")

    # --- RF64 (ds64 carries the sizes; RIFF and data sizes are 0xFFFFFFFF) -------------------------------
    s = ints(rng, 140, 16, 2)
    data = pack_le(interleave(s), 2)
    fmt = struct.pack("<HHIIHH", 1, 2, 32000, 32000 * 4, 4, 16)
    ds64_payload = struct.pack("<QQQI", 0, len(data), 140, 0)
    body = b"WAVE" + chunk_le(b"ds64", ds64_payload) + chunk_le(b"fmt ", fmt) + b"data" + struct.pack("<I", 0xFFFFFFFF) + data
    riff_size = len(body)
    body = body.replace(ds64_payload, struct.pack("<QQQI", riff_size, len(data), 140, 0), 1)
    add("rf64_pcm16_2ch_32000.wav", b"RF64" + struct.pack("<I", 0xFFFFFFFF) + body,
        "RF64", "pcm", 16, 2, 32000, s / 32768.0, "struct")

    # --- AIFF through the stdlib aifc module (big-endian PCM) --------------------------------------------
    for bits, ch, rate, n, form in [(16, 1, 22050, 233, "AIFF"), (24, 2, 44100, 171, "AIFF"), (8, 1, 11025, 190, "AIFF"),
                                    (16, 2, 8000, 160, "AIFC")]:
        s = ints(rng, n, bits, ch)
        ext = "aiff" if form == "AIFF" else "aifc"
        name = f"{ext}_{'none_' if form == 'AIFC' else ''}s{bits}_{ch}ch_{rate}.{ext}"
        path = os.path.join(OUT, name)
        w = aifc.open(path, "wb")
        if form == "AIFF":
            w.aiff()
        else:
            w.aifc()
        w.setnchannels(ch)
        w.setsampwidth(bits // 8)
        w.setframerate(rate)
        w.writeframes(pack_be(interleave(s), bits // 8))
        w.close()
        add(name, None, "AIFF" if form == "AIFF" else "AIFF-C", "NONE", bits, ch, rate, s / float(1 << (bits - 1)),
            "python aifc")

    # --- AIFF-C by hand: twos, sowt, fl32, FL64, odd chunk + SSND offset -----------------------------------
    s = ints(rng, 180, 16, 1)
    add("aifc_twos_s16_1ch_22050.aifc",
        aiff_bytes(b"AIFC", 1, 180, 16, 22050, pack_be(s.reshape(-1), 2), b"twos", b"Linear PCM, 16 bit big-endian signed integer"),
        "AIFF-C", "twos", 16, 1, 22050, s / 32768.0, "struct")
    s = ints(rng, 175, 16, 2)
    add("aifc_sowt_s16_2ch_48000.aifc",
        aiff_bytes(b"AIFC", 2, 175, 16, 48000, pack_le(interleave(s), 2), b"sowt", b"little endian"),
        "AIFF-C", "sowt", 16, 2, 48000, s / 32768.0, "struct")
    s = ints(rng, 150, 24, 1)
    add("aifc_sowt_s24_1ch_16000.aifc",
        aiff_bytes(b"AIFC", 1, 150, 24, 16000, pack_le(s.reshape(-1), 3), b"sowt", b""),
        "AIFF-C", "sowt", 24, 1, 16000, s / float(1 << 23), "struct")
    v = rng.uniform(-1, 1, size=(1, 190))
    v[0, :3] = [-1.0, 1.0, 0.0]
    add("aifc_fl32_1ch_24000.aifc",
        aiff_bytes(b"AIFC", 1, 190, 32, 24000, v.reshape(-1).astype(">f4").tobytes(), b"fl32", b"32-bit floating point"),
        "AIFF-C", "fl32", 32, 1, 24000, v.astype(np.float32).astype(np.float64), "struct")
    v = rng.uniform(-1, 1, size=(2, 130))
    add("aifc_FL64_2ch_16000.aifc",
        aiff_bytes(b"AIFC", 2, 130, 64, 16000, interleave(v).astype(">f8").tobytes(), b"FL64", b"64-bit float"),
        "AIFF-C", "FL64", 64, 2, 16000, v, "struct")
    s = ints(rng, 140, 16, 1)
    name_chunk = chunk_be(b"NAME", b"odd")  # 3-byte payload -> pad byte
    add("aiff_s16_1ch_11025_offset_oddchunk.aiff",
        aiff_bytes(b"AIFF", 1, 140, 16, 11025, pack_be(s.reshape(-1), 2), pre_chunks=name_chunk, ssnd_offset=6),
        "AIFF", "NONE", 16, 1, 11025, s / 32768.0, "struct")

    return entries


def parse_aifc_twos(path):
    """Independent numpy decode of an AIFF-C 'twos' file (big-endian PCM), to cross-check torchaudio."""
    b = open(path, "rb").read()
    assert b[:4] == b"FORM" and b[8:12] == b"AIFC"
    pos, comm, ssnd = 12, None, None
    while pos + 8 <= len(b):
        cid, size = b[pos:pos + 4], struct.unpack(">I", b[pos + 4:pos + 8])[0]
        payload = b[pos + 8:pos + 8 + size]
        if cid == b"COMM":
            comm = payload
        elif cid == b"SSND":
            ssnd = payload
        pos += 8 + size + (size & 1)
    ch, frames, bits = struct.unpack(">hIh", comm[:8])
    exp, mant = struct.unpack(">HQ", comm[8:18])
    rate = mant * 2.0 ** (exp - 16383 - 63)
    assert comm[18:22] == b"twos" and bits == 16, comm[18:22]
    off = struct.unpack(">I", ssnd[:4])[0]
    x = np.frombuffer(ssnd[8 + off:8 + off + frames * ch * 2], dtype=">i2").reshape(frames, ch).T
    return x.astype(np.float64) / 32768.0, rate


def make_real_speech():
    w, sr = torchaudio.load(REAL_SPEECH)
    w = w.numpy()
    mine, rate = parse_aifc_twos(REAL_SPEECH)
    if rate != sr or not np.array_equal(mine.astype(np.float32), w):
        raise SystemExit("real_speech.aiff: torchaudio and the numpy parse disagree")
    f32_file("real_speech.ch0_first2000.f32", w[0, :2000])
    x = w.astype(np.float64)
    meta = dict(file="real_speech.aiff", sample_rate=int(sr), channels=int(w.shape[0]), frames=int(w.shape[1]),
                container="AIFF-C", codec="twos", bits=16,
                sum=[float(v) for v in x.sum(axis=1)], sum_sq=[float(v) for v in (x * x).sum(axis=1)],
                first2000_ch0="real_speech.ch0_first2000.f32",
                decoded_by="torchaudio.load (sox_io), cross-checked equal to a numpy parse of the SSND chunk")
    with open(os.path.join(OUT, "real_speech.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")
    return w[0]


RATIOS = [(22050, 16000), (44100, 16000), (48000, 16000), (24000, 16000), (16000, 24000), (22050, 24000), (8000, 16000)]
KERNEL_RATIOS = [(48000, 16000), (24000, 16000), (16000, 24000), (8000, 16000)]


def test_signal(rate, seconds=0.5, seed=7):
    n = int(round(rate * seconds))
    t = np.arange(n, dtype=np.float64) / rate
    f0, f1 = 40.0, 0.48 * rate  # chirp sweeps past both Nyquists so the anti-alias filter matters
    phase = 2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / seconds * t * t)
    rng = np.random.default_rng(seed + rate)
    x = 0.6 * np.sin(phase) + 0.1 * rng.standard_normal(n)
    return np.clip(x, -1, 1).astype(np.float32)


def make_resample(real_ch0):
    cases = []
    inputs = {}
    for fr, to in RATIOS:
        if fr not in inputs:
            inputs[fr] = test_signal(fr)
            f32_file(f"resample_input_{fr}.f32", inputs[fr])
        x = torch.from_numpy(inputs[fr])
        y_f = taf.resample(x, fr, to).numpy()  # float32-built kernel, for information only
        y = torchaudio.transforms.Resample(fr, to)(x).numpy()  # float64-built kernel: official path, docs/model.md §2.1
        out = f32_file(f"resample_chirp_{fr}_to_{to}.f32", y)
        cases.append(dict(name=f"chirp {fr}->{to}", from_rate=fr, to_rate=to, input=f"resample_input_{fr}.f32",
                          input_length=len(inputs[fr]), output=out, output_length=len(y),
                          max_abs_diff_functional_vs_transforms=float(np.max(np.abs(y - y_f)))))
    seg = torch.from_numpy(np.ascontiguousarray(real_ch0[:22050]))
    for to in (16000, 24000):
        y_f = taf.resample(seg, 22050, to).numpy()
        y = torchaudio.transforms.Resample(22050, to)(seg).numpy()
        out = f32_file(f"resample_real_speech_22050_to_{to}.f32", y)
        cases.append(dict(name=f"real_speech first 1 s 22050->{to}", from_rate=22050, to_rate=to,
                          input="real_speech.aiff channel 0, first 22050 samples", input_length=22050,
                          output=out, output_length=len(y),
                          max_abs_diff_functional_vs_transforms=float(np.max(np.abs(y - y_f)))))
    kernels = []
    for fr, to in KERNEL_RATIOS:
        g = math.gcd(fr, to)
        k, width = _get_sinc_resample_kernel(fr, to, g, 6, 0.99, "sinc_interpolation", None, torch.device("cpu"), None)
        k = k.numpy().reshape(to // g, -1)
        kernels.append(dict(from_rate=fr, to_rate=to, phases=int(k.shape[0]), taps=int(k.shape[1]), width=int(width),
                            file=f32_file(f"resample_kernel_{fr}_to_{to}.f32", k.reshape(-1))))
    meta = dict(generator="torchaudio.transforms.Resample(from, to) defaults (sinc_interp_hann, lowpass_filter_width=6, "
                          "rolloff=0.99; kernel built in float64, stored float32), as the official load_audio calls it",
                torchaudio_version=torchaudio.__version__, torch_version=torch.__version__,
                kernels_note="kernels from _get_sinc_resample_kernel(dtype=None): computed in float64, stored float32, "
                             "as torchaudio.transforms.Resample builds them; layout [phases, taps]",
                cases=cases, kernels=kernels)
    with open(os.path.join(OUT, "resample.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


def make_pcm16_quantisation():
    """float32 -> int16 as the WavWriter documents it (clip to [-1, 1], x 32767 in float32, round half to even,
    i.e. libsndfile's lrintf), computed here with numpy for the C# writer to match."""
    rng = np.random.default_rng(99)
    x = np.concatenate([
        np.array([0.0, -0.0, 1.0, -1.0, 1.5, -7.0, 0.5, -0.5, 1.5 / 32767, 2.5 / 32767, -2.5 / 32767,
                  1e-30, -1e-30, 0.99999994, -0.99999994], dtype=np.float32),
        rng.uniform(-1.2, 1.2, 400).astype(np.float32),
        (rng.integers(-32767, 32768, 100) + 0.5).astype(np.float32) / np.float32(32767),  # near ties
    ]).astype(np.float32)
    q = np.rint(np.clip(x, np.float32(-1), np.float32(1)) * np.float32(32767)).astype(np.int16)
    f32_file("pcm16_quantise_input.f32", x)
    with open(os.path.join(OUT, "pcm16_quantise_expected.i16"), "wb") as f:
        f.write(q.astype("<i2").tobytes())


def main():
    os.makedirs(OUT, exist_ok=True)
    entries = make_formats()
    with open(os.path.join(OUT, "formats.json"), "w") as f:
        json.dump(dict(note="expected files: planar float32 little-endian [channels][frames]", fixtures=entries),
                  f, indent=1, sort_keys=True)
        f.write("\n")
    make_pcm16_quantisation()
    real_ch0 = make_real_speech()
    make_resample(real_ch0)
    print(f"wrote {len(os.listdir(OUT))} files to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
