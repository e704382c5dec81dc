#!/usr/bin/python3
"""Sampling fixtures: Hugging Face's per-step logits processing (as `generate(do_sample=True)` applies it), in torch.

transformers is not packaged for Debian 12, so the four processors the Step-Audio 2 examples switch on are written here
from HF's documented semantics (transformers/generation/logits_process.py):
  RepetitionPenaltyLogitsProcessor: gather the scores of every id in the whole sequence (prompt included), score < 0 →
      score * penalty else score / penalty, scatter back (a repeated id gets the same value written twice: penalised once).
  TemperatureLogitsWarper: scores / temperature.
  TopKLogitsWarper: k = min(max(top_k, 1), vocab); remove scores < topk(scores, k).values[-1] (ties at the k-th value stay).
  TopPLogitsWarper: sort ascending, cumsum(softmax(sorted)), remove cumulative ≤ 1 − top_p, the last (highest) one always kept.
and `generate` adds them in this order, each only when active: penalty ≠ 1, temperature ≠ 1, top_k ≠ 0, top_p < 1.
The draw itself is softmax → multinomial; the fixture holds the probability vector it draws from.

Writes fixtures/sampling/sampling.safetensors: for case NAME, `NAME.logits` [V] f32 (raw), `NAME.ids` [n] i64 (the
sequence so far), `NAME.scores` [V] f32 (processed scores, −inf where removed; small vocabularies only), `NAME.probs`
[V] f32 (softmax of the processed scores as HF computes it, in float32) and `NAME.probs_exact` [V] f32 (the same softmax
in float64, rounded to float32); metadata NAME = JSON of the parameters plus `survivors` (nonzero probabilities) and
`top_p_margin` (distance of the nearest cumulative probability to the top-p threshold, so that a one-ulp difference
cannot flip a token; boundaries inside a run of equal scores are avoided too, since torch.sort is unstable there).
Deterministic: fixed seeds, re-running reproduces the file bit-identically.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from steplab_ref import safetensors_io  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "sampling")
MIN_TOP_P_MARGIN = 1e-4


def repetition_penalty(input_ids, scores, penalty):
    score = torch.gather(scores, 1, input_ids)
    score = torch.where(score < 0, score * penalty, score / penalty)
    return scores.scatter(1, input_ids, score)


def temperature(scores, t):
    return scores / t


def top_k(scores, k):
    k = min(max(k, 1), scores.size(-1))
    remove = scores < torch.topk(scores, k)[0][..., -1, None]
    return scores.masked_fill(remove, -float("inf"))


def top_p(scores, p):
    sorted_logits, sorted_indices = torch.sort(scores, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cumulative <= (1 - p)
    remove_sorted[..., -1:] = 0
    remove = remove_sorted.scatter(1, sorted_indices, remove_sorted)
    # how close the decision came: a cumulative value within this distance of the threshold could flip on one ulp
    finite = torch.isfinite(sorted_logits)
    margin = (cumulative[finite] - torch.tensor(1 - p, dtype=torch.float32)).abs().min().item()
    # a boundary inside a run of equal values would depend on torch.sort's (unstable) order among them
    n_removed = int(remove_sorted[0].sum())
    if 0 < n_removed < scores.size(-1) and sorted_logits[0, n_removed - 1] == sorted_logits[0, n_removed]:
        margin = 0.0
    return scores.masked_fill(remove, -float("inf")), margin


def process(ids, logits, prm):
    """HF `generate` order; each processor only where generate would add it."""
    scores = logits.unsqueeze(0).clone()
    ids = ids.unsqueeze(0)
    margin = None
    if prm["repetition_penalty"] != 1.0:
        scores = repetition_penalty(ids, scores, prm["repetition_penalty"])
    if prm["do_sample"]:
        if prm["temperature"] != 1.0:
            scores = temperature(scores, prm["temperature"])
        if prm["top_k"] != 0:
            scores = top_k(scores, prm["top_k"])
        if prm["top_p"] < 1.0:
            scores, margin = top_p(scores, prm["top_p"])
    probs = torch.softmax(scores, dim=-1)
    return scores[0], probs[0], margin


def exact_probs(scores):
    """softmax of the processed float32 scores in float64: what torch's float32 softmax approximates (its float32
    summation is off by up to a few 1e-6 on rows with thousands of survivors)."""
    return torch.softmax(scores.double(), dim=-1).float()


CHAT = {"do_sample": True, "temperature": 0.7, "top_k": 50, "top_p": 0.9, "repetition_penalty": 1.05}
TRANSLATE = {"do_sample": True, "temperature": 0.1, "top_k": 50, "top_p": 1.0, "repetition_penalty": 1.0}
PLAIN = {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "repetition_penalty": 1.0}


def main():
    os.makedirs(OUT, exist_ok=True)
    tensors, meta = {}, {}

    def case(name, prm, make, seed):
        """make(g) → (logits, ids); redraws with the next seed while a top-p decision is closer than the margin."""
        for attempt in range(100):
            g = torch.Generator().manual_seed(seed + attempt)
            logits, ids = make(g)
            scores, probs, margin = process(ids, logits, prm)
            if margin is None or margin >= MIN_TOP_P_MARGIN or prm.get("exact_boundary"):
                break
        else:
            raise RuntimeError(f"{name}: no seed with a clear top-p boundary")
        survivors = int((probs > 0).sum())
        params = {k: prm[k] for k in ("do_sample", "temperature", "top_k", "top_p", "repetition_penalty")}
        params.update({"survivors": survivors, "top_p_margin": margin, "seed": seed + attempt})
        meta[name] = json.dumps(params)
        tensors[f"{name}.logits"] = logits.contiguous()
        tensors[f"{name}.ids"] = ids.to(torch.int64).contiguous()
        if logits.numel() <= 10000:  # the full-vocabulary case stays smaller without it
            tensors[f"{name}.scores"] = scores.contiguous()
        tensors[f"{name}.probs"] = probs.contiguous()
        tensors[f"{name}.probs_exact"] = exact_probs(scores).contiguous()
        assert torch.equal(tensors[f"{name}.probs_exact"] > 0, probs > 0), f"{name}: survivors differ in float64"
        return survivors

    def llm_like(vocab, n_ids, scale=3.0, boost=4.0):
        """Heavy-tailed logits (a few clear favourites), with the sequence hitting positive, negative and zero logits."""
        def make(g):
            logits = torch.randn(vocab, generator=g) * scale
            top = torch.randperm(vocab, generator=g)[:8]
            logits[top] += torch.rand(8, generator=g) * 6 + boost
            ids = torch.randint(0, vocab, (n_ids,), generator=g)
            ids = torch.cat([ids, ids[:n_ids // 3], top[:3], top[:1]])  # repeats, and favourites already seen
            logits[ids[0]] = 0.0  # zero logit: divided (not < 0), stays zero
            return logits, ids
        return make

    # the official example presets on a 5000-token vocabulary
    case("chat_v5000", CHAT, llm_like(5000, 60), 100)
    case("translate_v5000", TRANSLATE, llm_like(5000, 40), 200)
    case("plain_softmax_v5000", PLAIN, llm_like(5000, 10), 300)
    # one processor at a time
    case("penalty_only_v5000", {**PLAIN, "repetition_penalty": 1.3}, llm_like(5000, 200), 400)
    case("temperature_0_1_v5000", {**PLAIN, "temperature": 0.1}, llm_like(5000, 5), 500)
    case("top_p_only_v5000", {**PLAIN, "top_p": 0.9}, llm_like(5000, 5, scale=1.0), 600)
    case("top_p_1_0_top_k_50_v5000", {**PLAIN, "top_k": 50, "top_p": 1.0}, llm_like(5000, 5), 700)
    case("top_p_tiny_keeps_one_v5000", {**PLAIN, "top_p": 0.01}, llm_like(5000, 5, scale=0.5), 800)
    # greedy mode: only the penalty is a processor (warpers are sampling-only)
    def penalty_flips_winner(g):
        logits, ids = llm_like(5000, 30)(g)
        logits[ids[-1]] = 20.0  # the raw winner was already generated: 20 / 1.05 ≈ 19.05 loses to a fresh 19.5
        fresh = next(i for i in range(5000) if i not in set(ids.tolist()))
        logits[fresh] = 19.5
        return logits, ids
    case("greedy_with_penalty_v5000", {**CHAT, "do_sample": False}, penalty_flips_winner, 900)

    # top_k larger than the vocabulary: all kept
    def small(g):
        return torch.randn(37, generator=g) * 2, torch.randint(0, 37, (9,), generator=g)
    case("top_k_over_vocab_v37", {**CHAT, "top_p": 1.0, "top_k": 50}, small, 1000)

    # ties at the k-th value: logits quantised to 0.5 steps, so many share the boundary value and all of them stay
    def ties(g):
        logits = torch.round(torch.randn(5000, generator=g) * 4) / 2
        return logits, torch.randint(0, 5000, (20,), generator=g)
    n = case("top_k_ties_v5000", {**PLAIN, "top_k": 50}, ties, 1100)
    assert n > 50, f"top_k_ties_v5000 kept {n}: no tie at the boundary"
    n = case("top_k_ties_chat_v5000", {**CHAT, "repetition_penalty": 1.0}, ties, 1150)

    # exact top-p boundary: four equal logits, cumulative 0.25 0.5 0.75 1.0 exactly; top_p 0.75 → 1 − p = 0.25 and
    # the first sorted token (cumulative 0.25 ≤ 0.25) goes. Four elements: torch sorts them stably (lowest index first).
    def four(g):
        return torch.tensor([0.0, 0.0, 0.0, 0.0]), torch.tensor([3])
    case("top_p_exact_boundary_v4", {**PLAIN, "top_p": 0.75, "exact_boundary": True}, four, 1200)

    # already-masked logits (−inf stays −inf through the penalty and the warpers)
    def masked(g):
        logits, ids = llm_like(3000, 20, boost=0.0)(g)
        logits[torch.randperm(3000, generator=g)[:500]] = -float("inf")
        ids = torch.cat([ids, torch.nonzero(torch.isinf(logits))[:3, 0]])
        return logits, ids
    case("masked_logits_chat_v3000", CHAT, masked, 1300)

    # the tiny checkpoint's real vocabulary size, with a prompt-like sequence (turn markers, newline, audio patches)
    def tiny_vocab(g):
        logits, _ = llm_like(158720, 0, scale=2.5)(g)
        prompt = torch.tensor([151666, 8948, 198, 151665, 151666, 25312, 198, 151688] + [151690] * 25 + [151689, 151665,
                              151666, 77091, 198])
        generated = torch.randint(0, 151643, (40,), generator=g)
        favourites = torch.topk(logits, 3).indices
        ids = torch.cat([prompt, generated, favourites, generated[:5]])
        logits[198] = 5.0  # the newline is both likely and already present
        return logits, ids
    case("chat_v158720", CHAT, tiny_vocab, 1400)

    safetensors_io.save_file(tensors, os.path.join(OUT, "sampling.safetensors"), meta)
    print(f"wrote {len(meta)} cases to {OUT}/sampling.safetensors")
    for k, v in meta.items():
        print(f"  {k}: {v}")


if __name__ == "__main__":
    main()
