"""Plain-PyTorch reference of Step-Audio 2's HiFT vocoder (CosyVoice 2 `HiFTGenerator`, docs/model.md §7.10).

Module tree and parameter names follow the official classes, so `state_dict()` (prefixed `generator.`) has the keys
of the real `token2wav/hift.pt` (§7.13). The only departure: SineGen2's N(0,1) noise can be passed in (`noise`,
[B, 480·T, 9]) so that a port can be compared bit-for-bit; with `noise=None` it is drawn as the official code does.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import weight_norm


def get_padding(kernel_size, dilation=1):
    return int((kernel_size * dilation - dilation) / 2)


class Snake(nn.Module):
    """x + sin²(αx)/(α + 1e-9), α per channel on a linear scale (alpha_logscale=False, as HiFT uses it)."""

    def __init__(self, channels, alpha=1.0):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(channels) * alpha)
        self.no_div_by_zero = 0.000000001

    def forward(self, x):
        alpha = self.alpha.unsqueeze(0).unsqueeze(-1)
        return x + (1.0 / (alpha + self.no_div_by_zero)) * torch.pow(torch.sin(x * alpha), 2)


class ResBlock(nn.Module):
    def __init__(self, channels, kernel_size=3, dilations=(1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList()
        self.convs2 = nn.ModuleList()
        for d in dilations:
            self.convs1.append(weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d,
                                                     padding=get_padding(kernel_size, d))))
            self.convs2.append(weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=1,
                                                     padding=get_padding(kernel_size, 1))))
        self.activations1 = nn.ModuleList([Snake(channels) for _ in dilations])
        self.activations2 = nn.ModuleList([Snake(channels) for _ in dilations])

    def forward(self, x):
        for i in range(len(self.convs1)):
            xt = self.activations1[i](x)
            xt = self.convs1[i](xt)
            xt = self.activations2[i](xt)
            xt = self.convs2[i](xt)
            x = xt + x
        return x


class SineGen2(nn.Module):
    def __init__(self, samp_rate, upsample_scale, harmonic_num=0, sine_amp=0.1, noise_std=0.003, voiced_threshold=0):
        super().__init__()
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.harmonic_num = harmonic_num
        self.dim = harmonic_num + 1
        self.sampling_rate = samp_rate
        self.voiced_threshold = voiced_threshold
        self.upsample_scale = upsample_scale

    def _f02uv(self, f0):
        return (f0 > self.voiced_threshold).type(torch.float32)

    def _f02sine(self, f0_values):
        rad_values = (f0_values / self.sampling_rate) % 1
        rand_ini = torch.rand(f0_values.shape[0], f0_values.shape[2], device=f0_values.device)
        rand_ini[:, 0] = 0
        rad_values[:, 0, :] = rad_values[:, 0, :] + rand_ini
        rad_values = F.interpolate(rad_values.transpose(1, 2), scale_factor=1 / self.upsample_scale,
                                   mode="linear").transpose(1, 2)
        phase = torch.cumsum(rad_values, dim=1) * 2 * np.pi
        phase = F.interpolate(phase.transpose(1, 2) * self.upsample_scale, scale_factor=self.upsample_scale,
                              mode="linear").transpose(1, 2)
        return torch.sin(phase)

    def forward(self, f0, noise=None):
        fn = torch.multiply(f0, torch.FloatTensor([[range(1, self.harmonic_num + 2)]]).to(f0.device))
        sine_waves = self._f02sine(fn) * self.sine_amp
        uv = self._f02uv(f0)
        noise_amp = uv * self.noise_std + (1 - uv) * self.sine_amp / 3
        if noise is None:
            noise = torch.randn_like(sine_waves)
        noise = noise_amp * noise
        sine_waves = sine_waves * uv + noise
        return sine_waves, uv, noise


class SourceModuleHnNSF2(nn.Module):
    def __init__(self, sampling_rate, upsample_scale, harmonic_num=0, sine_amp=0.1, add_noise_std=0.003,
                 voiced_threshod=0):
        super().__init__()
        self.sine_amp = sine_amp
        self.noise_std = add_noise_std
        self.l_sin_gen = SineGen2(sampling_rate, upsample_scale, harmonic_num, sine_amp, add_noise_std,
                                  voiced_threshod)
        self.l_linear = nn.Linear(harmonic_num + 1, 1)
        self.l_tanh = nn.Tanh()

    def forward(self, x, noise=None):
        with torch.no_grad():
            sine_wavs, uv, _ = self.l_sin_gen(x, noise)
        sine_merge = self.l_tanh(self.l_linear(sine_wavs))
        noise_branch = torch.randn_like(uv) * self.sine_amp / 3  # computed but unused by HiFT (docs/model.md §9)
        return sine_merge, noise_branch, uv


class ConvRNNF0Predictor(nn.Module):
    def __init__(self, num_class=1, in_channels=80, cond_channels=512):
        super().__init__()
        layers = []
        for i in range(5):
            layers += [weight_norm(nn.Conv1d(in_channels if i == 0 else cond_channels, cond_channels, 3, padding=1)),
                       nn.ELU()]
        self.condnet = nn.Sequential(*layers)
        self.classifier = nn.Linear(cond_channels, num_class)

    def forward(self, x):
        x = self.condnet(x)
        x = x.transpose(1, 2)
        return torch.abs(self.classifier(x).squeeze(-1))


class HiFTGenerator(nn.Module):
    def __init__(self, in_channels=80, base_channels=512, nb_harmonics=8, sampling_rate=24000, nsf_alpha=0.1,
                 nsf_sigma=0.003, nsf_voiced_threshold=10, upsample_rates=(8, 5, 3), upsample_kernel_sizes=(16, 11, 7),
                 n_fft=16, hop_len=4, resblock_kernel_sizes=(3, 7, 11), resblock_dilation_sizes=((1, 3, 5),) * 3,
                 source_resblock_kernel_sizes=(7, 7, 11), source_resblock_dilation_sizes=((1, 3, 5),) * 3,
                 lrelu_slope=0.1, audio_limit=0.99, cond_channels=512):
        super().__init__()
        self.out_channels = 1
        self.nb_harmonics = nb_harmonics
        self.sampling_rate = sampling_rate
        self.n_fft, self.hop_len = n_fft, hop_len
        self.lrelu_slope = lrelu_slope
        self.audio_limit = audio_limit
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        up_total = int(np.prod(upsample_rates) * hop_len)
        self.m_source = SourceModuleHnNSF2(sampling_rate, up_total, nb_harmonics, nsf_alpha, nsf_sigma,
                                           nsf_voiced_threshold)
        self.f0_upsamp = nn.Upsample(scale_factor=up_total)
        self.conv_pre = weight_norm(nn.Conv1d(in_channels, base_channels, 7, 1, padding=3))
        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            self.ups.append(weight_norm(nn.ConvTranspose1d(base_channels // (2 ** i), base_channels // (2 ** (i + 1)),
                                                           k, u, padding=(k - u) // 2)))
        self.source_downs = nn.ModuleList()
        self.source_resblocks = nn.ModuleList()
        downsample_rates = [1] + list(upsample_rates)[::-1][:-1]
        downsample_cum_rates = np.cumprod(downsample_rates)
        for i, (u, k, d) in enumerate(zip(downsample_cum_rates[::-1], source_resblock_kernel_sizes,
                                          source_resblock_dilation_sizes)):
            u = int(u)
            ch = base_channels // (2 ** (i + 1))
            if u == 1:
                self.source_downs.append(nn.Conv1d(n_fft + 2, ch, 1, 1))
            else:
                self.source_downs.append(nn.Conv1d(n_fft + 2, ch, u * 2, u, padding=(u // 2)))
            self.source_resblocks.append(ResBlock(ch, k, d))
        self.resblocks = nn.ModuleList()
        for i in range(len(self.ups)):
            ch = base_channels // (2 ** (i + 1))
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(ResBlock(ch, k, d))
        self.conv_post = weight_norm(nn.Conv1d(ch, n_fft + 2, 7, 1, padding=3))
        self.reflection_pad = nn.ReflectionPad1d((1, 0))
        self.register_buffer("stft_window", torch.hann_window(n_fft, periodic=True), persistent=False)
        self.f0_predictor = ConvRNNF0Predictor(1, in_channels, cond_channels)

    def _stft(self, x):
        spec = torch.stft(x, self.n_fft, self.hop_len, self.n_fft, window=self.stft_window, center=True,
                          pad_mode="reflect", return_complex=True)
        spec = torch.view_as_real(spec)  # [B, F, TT, 2]
        return spec[..., 0], spec[..., 1]

    def _istft(self, magnitude, phase):
        magnitude = torch.clip(magnitude, max=1e2)
        real = magnitude * torch.cos(phase)
        img = magnitude * torch.sin(phase)
        return torch.istft(torch.complex(real, img), self.n_fft, self.hop_len, self.n_fft, window=self.stft_window)

    def source(self, mel, noise=None):
        """mel [B, 80, T] → (f0 [B, T], source [B, 1, 480·T])."""
        f0 = self.f0_predictor(mel)
        s = self.f0_upsamp(f0[:, None]).transpose(1, 2)  # [B, 480T, 1]
        s, _, _ = self.m_source(s, noise)
        return f0, s.transpose(1, 2)

    def source_stft(self, s):
        re, im = self._stft(s.squeeze(1))
        return torch.cat([re, im], dim=1)

    def decode(self, x, s):
        s_stft = self.source_stft(s)
        x = self.conv_pre(x)
        for i in range(self.num_upsamples):
            x = F.leaky_relu(x, self.lrelu_slope)
            x = self.ups[i](x)
            if i == self.num_upsamples - 1:
                x = self.reflection_pad(x)
            si = self.source_downs[i](s_stft)
            si = self.source_resblocks[i](si)
            x = x + si
            xs = None
            for j in range(self.num_kernels):
                y = self.resblocks[i * self.num_kernels + j](x)
                xs = y if xs is None else xs + y
            x = xs / self.num_kernels
        x = F.leaky_relu(x)
        x = self.conv_post(x)
        magnitude = torch.exp(x[:, :self.n_fft // 2 + 1, :])
        phase = torch.sin(x[:, self.n_fft // 2 + 1:, :])
        x = self._istft(magnitude, phase)
        return torch.clamp(x, -self.audio_limit, self.audio_limit)

    def forward(self, mel, noise=None):
        """mel [B, 80, T] → waveform [B, 480·T] (the official `inference` without the streaming cache)."""
        _, s = self.source(mel, noise)
        return self.decode(mel, s)


def to_parametrizations(state_dict):
    """Renames legacy `<m>.weight_g`/`<m>.weight_v` to the new `<m>.parametrizations.weight.original0/1` style."""
    out = {}
    for k, v in state_dict.items():
        if k.endswith(".weight_g"):
            out[k[:-len("weight_g")] + "parametrizations.weight.original0"] = v
        elif k.endswith(".weight_v"):
            out[k[:-len("weight_v")] + "parametrizations.weight.original1"] = v
        else:
            out[k] = v
    return out
