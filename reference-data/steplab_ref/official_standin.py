"""A stand-in for the official Hugging Face `StepAudio2ForCausalLM` (remote code `modeling_step_audio_2.py`), so that
`dump_official.py` can be exercised where neither the real weights nor `transformers` exist.

It has what the dumper relies on in the official model, and nothing else of it:
* the module tree and state-dict keys (`encoder.*`, `adapter.*`, `model.*` with `model.rotary_emb`, `lm_head`);
* the return conventions seen by forward hooks: the encoder and its attention return tuples (out, x_len) / (out, qk),
  decoder layers return 1-tuples, attention (out, None), `model` a mapping (recorded by no hook), LLM activations
  batch-first [1, T, C];
* the forward signature `forward(input_ids [B, T], wavs [B, 128, T_mel], wav_lens int32 [B] = mel frames − 2)` and its
  audio insertion (the k-th chunk's first feat_len rows after the k-th `<audio_start>`), returning an object with
  `.logits` [B, T, vocab].
The computation itself is `steplab_ref.model` (float32). A tiny tokenizer that knows only the special tokens and the
default prompt pieces stands in for the Qwen2 tokenizer.
"""
import json
import os
from types import SimpleNamespace

import torch

from . import model as refmodel


class StepAudio2ForCausalLM(refmodel.StepAudio2):
    AUDIO_START = 151688

    def forward(self, input_ids=None, wavs=None, wav_lens=None, attention_mask=None, **kwargs):
        hidden = self.model.embed_tokens(input_ids)
        if wavs is not None:
            out, feat_lens = self.encoder(wavs, wav_lens)
            out = self.adapter(out)
            feat_lens = (feat_lens - 1) // 2 + 1
            where = torch.nonzero(input_ids == self.AUDIO_START)
            for k in range(len(where)):
                b, s = int(where[k, 0]), int(where[k, 1]) + 1
                n = int(feat_lens[k])
                hidden[b, s:s + n] = out[k, :n]
        x = self.model(inputs_embeds=hidden)["last_hidden_state"]
        return SimpleNamespace(logits=self.lm_head(x))


def from_pretrained(model_dir, dtype=torch.float32):
    """Loads a checkpoint folder (config.json + sharded safetensors) into the stand-in, strictly."""
    return refmodel.from_checkpoint(model_dir, StepAudio2ForCausalLM).to(dtype)


class StandinTokenizer:
    """Encodes the dumper's prompt strings: special tokens from the tokenizer folder, plain pieces from a fixed table
    (the ids the real Qwen2 tokenizer gives them); anything else is refused, naming the piece."""

    PIECES = {"system\n": [8948, 198], "human\n": [25312, 198], "assistant\n": [77091, 198],
              "You are a helpful assistant.": [2610, 525, 264, 10950, 17847, 13]}

    def __init__(self, tokenizer_dir):
        with open(os.path.join(tokenizer_dir, "tokenizer_config.json")) as f:
            decoder = json.load(f)["added_tokens_decoder"]
        self.special = {v["content"]: int(k) for k, v in decoder.items()}

    def encode(self, text):
        ids, i = [], 0
        while i < len(text):
            tok = next((t for t in self.special if text.startswith(t, i)), None)
            if tok is not None:
                ids.append(self.special[tok])
                i += len(tok)
                continue
            piece = next((p for p in self.PIECES if text.startswith(p, i)), None)
            if piece is None:
                raise ValueError(f"the stand-in tokenizer does not know the text at {text[i:i + 30]!r}")
            ids += self.PIECES[piece]
            i += len(piece)
        return ids
