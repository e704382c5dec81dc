#!/usr/bin/env node
// Oracle fixtures for the Step-Audio 2 mini tokenizer (docs/model.md §6.1), from Hugging Face `tokenizers` (the Rust library
// behind Python's Qwen2TokenizerFast) through its Node binding, pinned in package.json.
//
// There is no tokenizer.json in the checkpoint, so this script builds the one that transformers' Qwen2Converter
// builds from vocab.json + merges.txt + tokenizer_config.json (NFC normaliser; Split(Qwen2 regex, isolated) then
// ByteLevel(add_prefix_space=false, use_regex=false); BPE without byte fallback; ByteLevel decoder; every entry of
// added_tokens_decoder with its own flags).
//
// Writes (deterministic: seeded PRNG, fixed iteration order; re-running reproduces the files byte for byte):
//   reference-data/fixtures/tokenizer/encode.jsonl   {"text", "ids", "nfc", "roundtrip"} per line
//   reference-data/fixtures/tokenizer/decode.jsonl   {"ids", "text"} per line (incl. invalid UTF-8 byte runs)
//   reference-data/fixtures/tokenizer/nfc.jsonl      {"text", "nfc"} per line (HF's NFC normaliser)
//   reference-data/fixtures/tokenizer/flags.jsonl    {"text", "ids"} with a flag-variant config (see FLAG_VARIANT)
//   src/StepAudio2.Lab/Text/UnicodeTables.g.cs       character classes and NFC data as HF's tokenizers sees them
//
// Usage: cd reference-data/tokenizer && npm ci && node make_tokenizer_fixtures.js [model_dir]
// model_dir defaults to ../../../shared/models/step-audio-2-mini (the shared folder beside the checkout).
// Needs /usr/bin/python3 (unicodedata) for the NFC tables: see ucd_tables.py.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { Tokenizer, nfcNormalizer, nfdNormalizer } = require('tokenizers');

const HERE = __dirname;
const REPO = path.resolve(HERE, '..', '..');
const MODEL = path.resolve(process.argv[2] || path.join(REPO, '..', 'shared', 'models', 'step-audio-2-mini'));
const OUT = path.join(REPO, 'reference-data', 'fixtures', 'tokenizer');
const GEN_CS = path.join(REPO, 'src', 'StepAudio2.Lab', 'Text', 'UnicodeTables.g.cs');

const QWEN2_PATTERN = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

// ---------------------------------------------------------------------------------------------------------------
// Tokenizer construction (what Qwen2TokenizerFast builds when the checkpoint has no tokenizer.json)

function readModel() {
  const vocab = JSON.parse(fs.readFileSync(path.join(MODEL, 'vocab.json'), 'utf8'));
  const merges = [];
  fs.readFileSync(path.join(MODEL, 'merges.txt'), 'utf8').split('\n').forEach((line, i) => {
    line = line.trim();
    if ((i === 0 && line.startsWith('#version:')) || line === '') return;
    merges.push(line);
  });
  const config = JSON.parse(fs.readFileSync(path.join(MODEL, 'tokenizer_config.json'), 'utf8'));
  const added = Object.entries(config.added_tokens_decoder)
    .map(([id, t]) => ({
      id: Number(id), content: t.content, single_word: t.single_word, lstrip: t.lstrip, rstrip: t.rstrip,
      normalized: t.normalized, special: t.special,
    }))
    .sort((a, b) => a.id - b.id);
  return { vocab, merges, added };
}

function tokenizerJson(model, added) {
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: added,
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: QWEN2_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: model.vocab, merges: model.merges,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Deterministic PRNG (mulberry32)

function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)); // inclusive
  const pick = (arr) => arr[int(0, arr.length - 1)];
  return { next, int, pick };
}

const isAssigned = (cp) => !/\p{Cn}|\p{Cs}|\p{Co}/u.test(String.fromCodePoint(cp));

// ---------------------------------------------------------------------------------------------------------------
// Test strings

function testStrings(searchText) {
  const R = rng(20250922);
  const out = [];
  const add = (s) => out.push(s);

  // Hand-picked cases: spec examples, contractions, whitespace and digit rules, special-token embeddings.
  [
    '', ' ', '  ', '\n', '\n\n', '\r\n', ' \n', '\t', 'a', 'A', '0', '!', "'",
    '<|BOT|>system\nYou are a helpful assistant.<|EOT|>',
    '<|BOT|>human\n', '<|BOT|>assistant\n', '<|BOT|>assistant\n<tts_start>',
    '<audio_start><audio_patch><audio_patch><audio_end>',
    '<tts_start><audio_12><audio_6561>', '<tts_start><audio_0><audio_6560><audio_6655><tts_end>',
    '<tool_call>function\nsearch\n{"query": "x"}</tool_call>',
    '</think>', '\n<think>\n', '<think>好的</think>\n\n<tts_start>', '</think>>',
    '<|BOT|>tool_json_schemas\n[{"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}]<|EOT|>',
    '<|BOT|>system\n请记录下你所听到的语音内容。<|EOT|>', '请用默认女声与用户交流。',
    '<|endoftext|>', '<|im_start|>user\nhi<|im_end|>', '<|THINK_START|><|THINK_END|>', '<|MASK_1e69f|>',
    '<audio_6656>', '<audio_-1>', '<audio_01>', '<audio_>', '<|bot|>', '<|BOT|', '|BOT|>', '<<|BOT|>>', '<|BOT|><|BOT|>',
    ' <|BOT|> ', '\n<|EOT|>\n', 'x<audio_5>y', ' <audio_5> ', '<audio_5>\u0338', '<|EOT|>\u0338', '<tool_call>\u0338',
    '<audio_5\u0338', 'e\u0301<audio_7>e\u0301',
    "it's", "don't", "we're", "I've", "I'm", "you'll", "he'd", "IT'S", "DON'T", "WE'RE", "I'VE", "I'M", "YOU'LL",
    "HE'D", "It'S", "'s", "'S", "'t", "'re", "'ve", "'m", "'ll", "'d", "'x", "''s", "'sa", "'Ll", "' s",
    "\u2019s", "it\u2019s", "'\u017F", "'\u212A", "'\u0130", "'LL'D'VE",
    '123', '1234567890', '3.14159', '-42', '1,000,000', '12ab34', 'ab12cd', '٣٤٥', '一二三', '①②③', 'Ⅻ', '½', '²³',
    '𝟏𝟐𝟑', '𝐀𝐁𝐂', '𝒜𝓑', 'a𝐀b', '𠀀𠀁𠀂', '中𠀀文', '\u{1D7CE}\u{1D7CF}',
    // Supplementary letters/digits next to other classes: a UTF-16 regex (.NET) splits these differently from HF.
    " 𝟏", ' 𝟏𝟐', "𝐀's", "x 𝟎!", "𠮷's", "𝑥'll", "a𝐀'd b", ' 𝟗 apples', '𝐀!', '𠮷。',
    'hello world', 'Hello World!', ' hello', 'hello ', '  hello  world  ', 'hello\tworld', 'hello\nworld',
    'hello\r\nworld', 'hello\n\nworld', 'hello \n world', 'a  b   c    d', '\t\t\tindent', '   \n   \n', ' \r\n \r\n ',
    '\u00a0nbsp\u00a0', '\u3000全角空格\u3000', 'zero\u200bwidth', '\ufeffbom', 'line\u2028sep\u2029para', 'nel\u0085x',
    'tab\u000bvt\u000cff', '\u001c\u001d\u001e\u001f', 'ctrl\u0000\u0001\u001b\u007f', 'soft\u00adhyphen',
    '!!!', '...', '?!', '!?\n\n', 'a!b', '!hello', ' !hello', '@user', '#hashtag', '$100', '100%', '(x)', '[y]', '{z}',
    '"quoted"', "'single'", '«guillemets»', '—em dash—', '–', '…', '¿Qué?', '¡Hola!', 'a/b\\c', 'x=y+z*2^3',
    'café', 'cafe\u0301', 'naïve', 'nai\u0308ve', 'Å', 'A\u030a', '\u212b', 'ﬁ', 'Ǻ', 'A\u030a\u0301',
    '\u1100\u1161\u11a8', '\u1100\u1161', '한국어', '\u1112\u1161\u11ab\u1100\u116e\u11a8', 'ḍ̇', 'd\u0307\u0323', 'q\u0307\u0323',
    'ệ', 'e\u0323\u0302', 'e\u0302\u0323', 'Tiếng Việt', 'x\u0301\u0301', '\u0301start', '\u0345\u0301',
    '😀', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇨🇳🇺🇸', '1️⃣', '❤️', '☺︎', '🧑🏿‍🚀', '👩🏻‍❤️‍💋‍👨🏼', 'emoji 😀 text', '😀😀😀',
    'def f(x):\n    return x * 2\n', 'for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}', 'SELECT * FROM t WHERE id = 1;',
    '<div class="a">b</div>', 'https://example.com/path?q=1&r=2#frag', 'user@example.com', '{"a": [1, 2, {"b": null}]}',
    'C:\\Users\\name\\file.txt', '#!/bin/bash\necho "$HOME"\n', '  x = 1  # comment', 'λx. x + 1',
    'Привет, мир!', 'Γειά σου κόσμε', 'مرحبا بالعالم', 'שלום עולם', 'नमस्ते दुनिया', 'สวัสดีชาวโลก', 'こんにちは世界',
    'カタカナとひらがな', '東京タワー', 'ｶﾀｶﾅ', 'ＡＢＣ１２３', '안녕하세요 세계', '中文，标点。“引号”！', '一、二、三；四：五？',
    searchText,
  ].forEach(add);

  // Contractions with case variants and neighbours.
  const contr = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];
  for (let i = 0; i < 40; i++) {
    let c = R.pick(contr).split('').map((ch) => (R.next() < 0.5 ? ch.toUpperCase() : ch)).join('');
    add(R.pick(['', 'he', 'She', 'IT', '1', ' ', '中', '!']) + c + R.pick(['', ' ', 'x', 'X', '\n', "'", '9']));
  }

  // English-ish sentences from word pools.
  const words = ('the quick brown fox jumps over lazy dog I you we they it is are was were be have has had do does ' +
    'did not can could will would should may might must shall hello world speech audio model token language ' +
    'Step Audio Qwen transformer attention encoder decoder voice music weather today tomorrow London Beijing ' +
    'GPU CPU API JSON HTTP OK NASA e.g. i.e. etc. Mr. Dr. USA UK AI ML').split(' ');
  const punct = ['.', ',', '!', '?', ';', ':', ' -', ' —', '...', '"', "'", '(', ')'];
  for (let i = 0; i < 220; i++) {
    const n = R.int(1, 18);
    let s = '';
    for (let k = 0; k < n; k++) {
      let w = R.pick(words);
      if (R.next() < 0.15) w = w[0].toUpperCase() + w.slice(1);
      if (R.next() < 0.08) w = w.toUpperCase();
      if (R.next() < 0.07) w += R.pick(contr);
      if (R.next() < 0.06) w = String(R.int(0, 99999));
      s += (k === 0 ? '' : R.pick([' ', ' ', ' ', ' ', '  ', '\t', '\n', ', ', '. '])) + w;
      if (R.next() < 0.1) s += R.pick(punct);
    }
    if (R.next() < 0.2) s = R.pick([' ', '\n', '  ', '\t']) + s;
    if (R.next() < 0.2) s += R.pick([' ', '\n', '\n\n', '  ', '\r\n', ' \n']);
    add(s);
  }

  // Chinese: slices of the shared search result and random CJK mixes.
  const zh = [...searchText];
  const zhWords = ['你好', '世界', '语音', '模型', '今天', '天气', '北京', '上海', '我们', '的', '了', '是', '在', '人工智能',
    '请', '记录', '内容', '默认', '女声', '用户', '交流', '长城', '介绍', '一下', '音乐', '播放', '搜索', '结果', '股票', '指数'];
  for (let i = 0; i < 120; i++) {
    let s;
    const mode = R.int(0, 3);
    if (mode === 0) { const a = R.int(0, zh.length - 1); s = zh.slice(a, a + R.int(1, 60)).join(''); }
    else if (mode === 1) { s = Array.from({ length: R.int(1, 12) }, () => R.pick(zhWords)).join(R.pick(['', '', '，', ' ', '。'])); }
    else if (mode === 2) { s = Array.from({ length: R.int(1, 20) }, () => String.fromCodePoint(R.int(0x4E00, 0x9FA5))).join(''); }
    else { s = R.pick(zhWords) + R.pick([' ', '', ',', '123', 'abc', ' GPU ', '😀']) + R.pick(zhWords) + R.pick(['。', '！', '？', '…', '']); }
    add(s);
  }

  // Japanese / Korean.
  for (let i = 0; i < 70; i++) {
    const n = R.int(1, 16);
    let s = '';
    for (let k = 0; k < n; k++) {
      const r = R.int(0, 4);
      s += String.fromCodePoint(r === 0 ? R.int(0x3041, 0x3096) : r === 1 ? R.int(0x30A1, 0x30FA)
        : r === 2 ? R.int(0xAC00, 0xD7A3) : r === 3 ? R.int(0x4E00, 0x9FA5) : R.pick([0x3001, 0x3002, 0x30FC, 0x20, 0x3000]));
    }
    add(s);
  }

  // Emoji: singles, skin tones, ZWJ sequences, flags, keycaps, variation selectors.
  const base = ['😀', '😂', '🥲', '👍', '👋', '🙏', '🧑', '👩', '👨', '🐱', '🌍', '🎵', '🔥', '✨', '❤', '☀', '⚽', '🚀', '🍜', '🧠'];
  const tones = ['\u{1F3FB}', '\u{1F3FC}', '\u{1F3FD}', '\u{1F3FE}', '\u{1F3FF}'];
  for (let i = 0; i < 80; i++) {
    let s = '';
    const n = R.int(1, 5);
    for (let k = 0; k < n; k++) {
      let e = R.pick(base);
      const r = R.next();
      if (r < 0.2) e += R.pick(tones);
      else if (r < 0.35) e += '\u200D' + R.pick(base);
      else if (r < 0.45) e += '\uFE0F';
      else if (r < 0.55) e = String.fromCodePoint(0x1F1E6 + R.int(0, 25), 0x1F1E6 + R.int(0, 25));
      else if (r < 0.6) e = R.pick('0123456789#*') + '\uFE0F\u20E3';
      s += e + (R.next() < 0.3 ? R.pick([' ', 'ok', '好', '\n', '!']) : '');
    }
    add(s);
  }

  // Whitespace, digits, punctuation stress from a small alphabet.
  const alpha = [' ', ' ', '  ', '\t', '\n', '\r', '\r\n', '\u3000', '\u00a0', '\u2003', '\u000b', '\u0085', '0', '1', '7', '42',
    'a', 'B', 'xy', '中', 'é', '.', ',', '!', '?', "'", '"', '-', '_', '(', ')', '\\', '/', '*', '#', '@', '¥', '€', '\u200b'];
  for (let i = 0; i < 160; i++) {
    let s = '';
    const n = R.int(1, 25);
    for (let k = 0; k < n; k++) s += R.pick(alpha);
    add(s);
  }

  // Code snippets.
  const code = ['int main() {\n  return 0;\n}\n', 'if x > 0:\n\tprint("pos")\nelse:\n\tprint(\'neg\')\n',
    'const f = (a, b) => a + b; // sum', 'fn main() { println!("{}", 1 << 4); }', '<?xml version="1.0"?>\n<a b=\'c\'/>',
    'x := []int{1, 2, 3}', 'SELECT name, COUNT(*) AS n FROM users GROUP BY name HAVING n > 10;', '$ ls -la | grep "\\.cs$"',
    '    def __init__(self, x: int) -> None:\n        self.x = x\n', 'a[i][j] += b[j][k] * c[k][i];', '// TODO: fix\r\n',
    '    \n        \n', 'var s = $"{x,10:F2}";', '@media (max-width: 600px) { .a { color: #fff; } }', 'λ = 2π/ω'];
  for (let i = 0; i < 40; i++) {
    const c = R.pick(code);
    const a = R.int(0, c.length - 1);
    add(i < code.length ? code[i] : c.slice(a, a + R.int(1, 40)));
  }

  // Added tokens embedded in text.
  const specials = ['<|BOT|>', '<|EOT|>', '<audio_start>', '<audio_end>', '<audio_patch>', '<tts_start>', '<tts_end>',
    '<tts_pad>', '<tool_call>', '</tool_call>', '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|fim_prefix|>', '<|SC|>',
    '<patch_newline>', '<|CALL_START|>', '<|THINK_END|>'];
  const frags = ['human', 'assistant', 'system', '\n', ' ', 'hello', '你好', '😀', '<', '>', '</', 'think', '|', '<audio', '_', '12',
    'function\nsearch\n{"query": "天气"}', '<|', '|>', 'e\u0301', ' \n ', '>\u0338'];
  for (let i = 0; i < 120; i++) {
    let s = '';
    const n = R.int(1, 10);
    for (let k = 0; k < n; k++) {
      const r = R.next();
      if (r < 0.35) s += R.pick(specials);
      else if (r < 0.55) s += `<audio_${R.pick([0, 1, 9, 10, 99, 100, 999, 1000, 6559, 6560, 6561, 6562, 6655, 6656, 10000, R.int(0, 6655)])}>`;
      else s += R.pick(frags);
    }
    add(s);
  }

  // Random code points from long-assigned ranges (incl. supplementary letters/digits and combining marks).
  const ranges = [[0x20, 0x7E], [0xA0, 0x24F], [0x250, 0x2AF], [0x300, 0x36F], [0x370, 0x3FF], [0x400, 0x4FF], [0x591, 0x5F4],
    [0x600, 0x6FF], [0x900, 0x97F], [0x9E6, 0x9EF], [0xE00, 0xE7F], [0x1E00, 0x1EFF], [0x2000, 0x206F], [0x20A0, 0x20BF],
    [0x2100, 0x218F], [0x2460, 0x24FF], [0x2600, 0x26FF], [0x3040, 0x30FF], [0x3130, 0x318E], [0x1100, 0x11FF],
    [0xAC00, 0xD7A3], [0x4E00, 0x9FA5], [0xFF00, 0xFFEF], [0x1D400, 0x1D7FF], [0x20000, 0x2A6D6], [0x1F300, 0x1F64F],
    [0x10000, 0x1007F], [0x1D100, 0x1D1DD], [0x1F900, 0x1F9FF], [0x0, 0x1F]];
  for (let i = 0; i < 140; i++) {
    let s = '';
    const n = R.int(1, 20);
    const local = [R.pick(ranges), R.pick(ranges), R.pick(ranges)];
    while ([...s].length < n) {
      const [lo, hi] = R.pick(local);
      const cp = R.int(lo, hi);
      if (isAssigned(cp)) s += String.fromCodePoint(cp);
    }
    add(s);
  }

  // NFD (and mixed-order) inputs that NFC changes.
  const accented = ['café', 'naïve', 'résumé', 'Ångström', 'Tiếng Việt có dấu', 'Ελληνικά ά', 'ŞŢĂ', 'Ǻǻ', 'ḉ', '한국어 문장',
    'Ｃafé', 'ḍ̇', 'Übermäßig', 'Pokémon', 'à la carte', 'crème brûlée', 'Dvořák', 'Łódź', 'São Paulo', 'ñandú'];
  for (let i = 0; i < 60; i++) {
    let s = R.pick(accented);
    s = s.normalize(R.next() < 0.7 ? 'NFD' : 'NFKD');
    if (R.next() < 0.4) s += R.pick(['\u0301', '\u0323\u0307', '\u0307\u0323', '\u0328\u0301']);
    add(s);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Decode cases: ids -> text, including byte tokens that form invalid or truncated UTF-8.

function byteTokenIds(vocab) {
  // GPT-2 byte <-> unicode table.
  const bs = [];
  for (let b = 0x21; b <= 0x7E; b++) bs.push(b);
  for (let b = 0xA1; b <= 0xAC; b++) bs.push(b);
  for (let b = 0xAE; b <= 0xFF; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n); n++; }
  const ids = new Array(256);
  bs.forEach((b, i) => { ids[b] = vocab[String.fromCodePoint(cs[i])]; });
  return ids;
}

function decodeCases(model) {
  const R = rng(7);
  const B = byteTokenIds(model.vocab);
  const bytes = (...xs) => xs.map((x) => B[x]);
  const cases = [
    [], bytes(0xE4, 0xB8, 0xAD), bytes(0xE4, 0xB8), bytes(0xE4), bytes(0xE4, 0xB8, 0x61), bytes(0x80), bytes(0x80, 0x80),
    bytes(0xC0, 0xAF), bytes(0xC1, 0xBF), bytes(0xED, 0xA0, 0x80), bytes(0xED, 0xBF, 0xBF), bytes(0xF4, 0x90, 0x80, 0x80),
    bytes(0xF5, 0x80), bytes(0xFF), bytes(0xFE, 0xFF), bytes(0xF0, 0x9F, 0x98), bytes(0xF0, 0x9F, 0x98, 0x80),
    bytes(0xF0, 0x9F), bytes(0xE0, 0x80, 0x80), bytes(0xE0, 0xA0), bytes(0xF0, 0x80, 0x80, 0x80), bytes(0xF0, 0x90),
    bytes(0xC2), bytes(0xC2, 0x41), bytes(0xE2, 0x82, 0xAC, 0xE2, 0x82), bytes(0xEF, 0xBB, 0xBF, 0x41), bytes(0x00, 0x7F),
    [...bytes(0xE4, 0xB8), 151665, ...bytes(0xAD)], [151666, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151665],
    [151693, 151708, 158257, 151694], [522, 26865, 29], [151657, 151658], [151643, 151644, 151645, 158351],
    [27, 151690, 29], [151688, ...Array(5).fill(151690), 151689], [64, 158400, 65], [158719],
  ];
  // Random byte-token soups (mostly invalid UTF-8), random vocab ids, and mixes with added tokens.
  for (let i = 0; i < 60; i++) cases.push(Array.from({ length: R.int(1, 12) }, () => B[R.int(0x80, 0xFF)]));
  for (let i = 0; i < 60; i++) cases.push(Array.from({ length: R.int(1, 12) }, () => R.int(0, 151642)));
  for (let i = 0; i < 40; i++) {
    cases.push(Array.from({ length: R.int(1, 12) }, () => {
      const r = R.next();
      return r < 0.3 ? R.int(151643, 158351) : r < 0.6 ? B[R.int(0, 255)] : R.int(0, 151642);
    }));
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------------------------
// Unicode tables as HF's tokenizers sees them (Oniguruma classes for the regex; NFC data it knows).

function probeClasses(pattern) {
  const t = Tokenizer.fromString(JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
    post_processor: null, decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, vocab: {}, merges: [] },
  })).getPreTokenizer();
  // Each code point sits between two U+0001 (no class): a piece without U+0001 is a code point the pattern matched.
  const hit = new Uint8Array(0x110000);
  const CHUNK = 0x8000;
  for (let lo = 0; lo < 0x110000; lo += CHUNK) {
    let s = '\u0001';
    for (let cp = lo; cp < lo + CHUNK; cp++) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      if (cp === 1) continue;
      s += String.fromCodePoint(cp) + '\u0001';
    }
    for (const [piece] of t.preTokenizeString(s)) {
      if (!piece.includes('\u0001')) hit[piece.codePointAt(0)] = 1;
    }
  }
  return hit;
}

function ranges(flag) {
  const r = [];
  for (let cp = 0; cp < flag.length; cp++) {
    if (!flag[cp]) continue;
    let end = cp;
    while (end + 1 < flag.length && flag[end + 1]) end++;
    r.push([cp, end]);
    cp = end;
  }
  return r;
}

function unicodeTables() {
  const L = probeClasses(String.raw`\p{L}`);
  const N = probeClasses(String.raw`\p{N}`);
  const S = probeClasses(String.raw`\s`);
  const ucd = JSON.parse(execFileSync('/usr/bin/python3', [path.join(HERE, 'ucd_tables.py')], { maxBuffer: 1 << 26 }).toString());
  const nfd = nfdNormalizer();
  const known = new Set();
  for (const [cp, probe, expect] of ucd.probes) if (nfd.normalizeString(probe) === expect) known.add(cp);
  const ccc = ucd.ccc.filter(([cp]) => known.has(cp));
  const decomp = ucd.decomp.filter(([cp]) => known.has(cp));
  const compose = ucd.compose.filter(([, , cp]) => known.has(cp));
  return { L, N, S, ucdVersion: ucd.version, ccc, decomp, compose, dropped: ucd.probes.length - known.size };
}

function writeTables(T) {
  const cls = new Uint8Array(0x110000); // 0 other, 1 letter, 2 number, 3 space
  for (let cp = 0; cp < 0x110000; cp++) cls[cp] = T.S[cp] ? 3 : T.L[cp] ? 1 : T.N[cp] ? 2 : 0;
  const classRanges = [];
  for (let cp = 0; cp < 0x110000; cp++) {
    if (!cls[cp]) continue;
    let end = cp;
    while (end + 1 < 0x110000 && cls[end + 1] === cls[cp]) end++;
    classRanges.push([cp, end, cls[cp]]);
    cp = end;
  }
  const cccRanges = [];
  const cccMap = new Map(T.ccc);
  const cps = T.ccc.map(([cp]) => cp);
  for (let i = 0; i < cps.length; i++) {
    let j = i;
    while (j + 1 < cps.length && cps[j + 1] === cps[j] + 1 && cccMap.get(cps[j + 1]) === cccMap.get(cps[i])) j++;
    cccRanges.push([cps[i], cps[j], cccMap.get(cps[i])]);
    i = j;
  }
  const fmt = (rows, width) => {
    const flat = rows.flat();
    const lines = [];
    for (let i = 0; i < flat.length; i += width) lines.push('        ' + flat.slice(i, i + width).map((x) => '0x' + x.toString(16).toUpperCase()).join(', ') + ',');
    return lines.join('\n');
  };
  const cs = `// <auto-generated>
// Generated by reference-data/tokenizer/make_tokenizer_fixtures.js from HF tokenizers ${require('tokenizers/package.json').version}
// (Oniguruma classes \\p{L}, \\p{N}, \\s probed code point by code point) and Python unicodedata ${T.ucdVersion}
// (canonical combining classes, canonical decompositions, primary composites), keeping only the code points whose
// NFC data HF's normaliser knows (${T.dropped} newer ones dropped). Do not edit by hand.
// </auto-generated>
namespace StepAudio2.Lab.Text;

internal static partial class UnicodeTables
{
    /// <summary>Sorted [first, last, class] triples; class 1 = \\p{L}, 2 = \\p{N}, 3 = \\s; code points outside are "other".</summary>
    private static ReadOnlySpan<int> ClassRanges =>
    [
${fmt(classRanges, 12)}
    ];

    /// <summary>Sorted [first, last, ccc] triples of code points with a non-zero canonical combining class.</summary>
    private static ReadOnlySpan<int> CccRanges =>
    [
${fmt(cccRanges, 12)}
    ];

    /// <summary>[code point, first, second] single-step canonical decompositions; second = -1 for singletons.</summary>
    private static ReadOnlySpan<int> Decompositions =>
    [
${fmt(T.decomp.map(([cp, p]) => [cp, p[0], p.length > 1 ? p[1] : -1]), 12).replace(/0x-1/g, '-1')}
    ];

    /// <summary>[first, second, composite] primary composites (composition exclusions already removed).</summary>
    private static ReadOnlySpan<int> Compositions =>
    [
${fmt(T.compose, 12)}
    ];
}
`;
  fs.mkdirSync(path.dirname(GEN_CS), { recursive: true });
  fs.writeFileSync(GEN_CS, cs);
  return { classRanges: classRanges.length, cccRanges: cccRanges.length, decomp: T.decomp.length, compose: T.compose.length };
}

function nfcCases(T) {
  const R = rng(11);
  const out = [];
  const marks = T.ccc.map(([cp]) => cp);
  for (const [cp] of T.decomp) {
    const s = String.fromCodePoint(cp);
    out.push(s, s.normalize('NFD'));
  }
  for (let i = 0; i < 600; i++) {
    let s = String.fromCodePoint(R.pick([0x61, 0x41, 0x65, 0x6F, 0x75, 0x1100, 0xAC00, 0x3B1, 0x430, 0x915, 0x5D0, 0x627, 0x300]));
    if (R.next() < 0.3) s = s.normalize('NFD');
    const n = R.int(1, 4);
    for (let k = 0; k < n; k++) s += String.fromCodePoint(R.next() < 0.5 ? R.pick([0x300, 0x301, 0x302, 0x303, 0x308, 0x30A, 0x323, 0x327, 0x328, 0x331, 0x345, 0x334, 0x1161, 0x11A8]) : R.pick(marks));
    out.push(s);
  }
  out.push('\u1100\u1161\u11A8', '\u1100\u1161\u11A7', '\uAC00\u11A8', '\uAC01\u11A8', '\u1100\u1100\u1161', '\u1161\u11A8', 'ﬁ', '\u212B\u0301');
  const nfc = nfcNormalizer();
  return out.map((text) => ({ text, nfc: nfc.normalizeString(text) }));
}

// ---------------------------------------------------------------------------------------------------------------

// Flag variant: same vocabulary, but a few added tokens get lstrip/rstrip/single_word/normalized flags that the real
// config does not use, so the C# side is checked on every flag HF honours. The test applies the same edits.
const FLAG_VARIANT = {
  '<tool_call>': { lstrip: true },
  '</tool_call>': { rstrip: true },
  '<|BOT|>': { lstrip: true, rstrip: true },
  '<tts_pad>': { single_word: true },
  '<audio_7>': { single_word: true, normalized: false },
  '<|EOT|>': { normalized: true, special: false },
};

async function main() {
  const t0 = Date.now();
  const model = readModel();
  const tok = Tokenizer.fromString(JSON.stringify(tokenizerJson(model, model.added)));
  const searchText = fs.readFileSync(path.join(MODEL, '..', '..', 'audio', 'search_result.txt'), 'utf8').trim();
  fs.mkdirSync(OUT, { recursive: true });

  const texts = testStrings(searchText);
  const nfc = nfcNormalizer();
  const enc = [];
  for (const text of texts) {
    const ids = (await tok.encode(text)).getIds();
    // nfc: HF's NFC of the whole text; roundtrip: HF's decode of the ids (differs from nfc only where an added token
    // matched in the raw text keeps a following combining mark from composing with it).
    enc.push(JSON.stringify({ text, ids, nfc: nfc.normalizeString(text), roundtrip: await tok.decode(ids, false) }));
  }
  fs.writeFileSync(path.join(OUT, 'encode.jsonl'), enc.join('\n') + '\n');

  const dec = [];
  for (const ids of decodeCases(model)) dec.push(JSON.stringify({ ids, text: await tok.decode(ids, false) }));
  fs.writeFileSync(path.join(OUT, 'decode.jsonl'), dec.join('\n') + '\n');

  const variantAdded = model.added.map((a) => ({ ...a, ...(FLAG_VARIANT[a.content] || {}) }));
  const vtok = Tokenizer.fromString(JSON.stringify(tokenizerJson(model, variantAdded)));
  const fl = [JSON.stringify({ variant: FLAG_VARIANT })];
  const flagTexts = ['a <tool_call> b', 'a\n\t<tool_call>b', 'a</tool_call> \n b', 'x  <|BOT|>  y', '<|BOT|>', ' <|BOT|>\n',
    'a<tts_pad>b', 'a <tts_pad> b', '<tts_pad>', '中<tts_pad>文', '1<tts_pad>', 'x <audio_7> y', 'x<audio_7>y',
    '<audio_7><audio_7>', '<audio_7>\u0338', '<|EOT|>\u0338', 'a<|EOT|>b', ' <audio_8> ', '\u00a0<tool_call>\u3000', '<tool_call></tool_call>'];
  for (const text of flagTexts) fl.push(JSON.stringify({ text, ids: (await vtok.encode(text)).getIds() }));
  fs.writeFileSync(path.join(OUT, 'flags.jsonl'), fl.join('\n') + '\n');

  const T = unicodeTables();
  const counts = writeTables(T);
  fs.writeFileSync(path.join(OUT, 'nfc.jsonl'), nfcCases(T).map((c) => JSON.stringify(c)).join('\n') + '\n');

  console.log(`tokenizers ${require('tokenizers/package.json').version}: ${texts.length} encode, ${dec.length} decode, ` +
    `${fl.length - 1} flag cases; tables ${JSON.stringify(counts)}; ${T.dropped} UCD ${T.ucdVersion} entries unknown to HF; ` +
    `${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main().catch((e) => { console.error(e); process.exit(1); });
