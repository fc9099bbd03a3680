#!/usr/bin/env python3
"""Make the byte-level BPE test vocabulary in testdata/gpt2_tokenizer/.

Dev-only. Every model shipped for tests uses SentencePiece, so this trains a small byte-level
BPE offline, writes it into vocab-only GGUF files (one per pre-tokenizer), and records the ids
llama.cpp gives for a list of strings. The Rust tests then require the same ids.

    python3 -m venv /tmp/gpt2env && /tmp/gpt2env/bin/pip install tokenizers gguf llama-cpp-python
    /tmp/gpt2env/bin/python scripts/gpt2_tokenizer/make_vocab.py testdata/gpt2_tokenizer

Steps:
1. Build a corpus from text generated here (seeded): short stories, code, numbers,
   punctuation, CJK, Korean, emoji. Nothing is downloaded.
2. Train a byte-level BPE with the `tokenizers` library: Qwen2's pre-tokenizer regex, byte-level
   alphabet and decoder, special tokens <|endoftext|>, <|im_start|>, <|im_end|>.
3. Write one GGUF per pre-tokenizer (`qwen2`, `llama-bpe`, `default`, `gpt-2`) with gguf-py:
   tokenizer metadata plus the minimal llama hyperparameters llama.cpp needs to load a
   vocabulary (no tensors).
4. Load each GGUF in llama.cpp (llama-cpp-python, vocab_only=True) and record the ids of every
   test string, and every token's piece bytes, in reference.json.
"""

import hashlib
import json
import os
import random
import sys
from importlib import metadata

import gguf
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

VOCAB_SIZE = 1500
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2's pre-tokenizer, as in its tokenizer.json.
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# GGUF variants: (file stem, tokenizer.ggml.pre, add_bos key or None for "absent").
VARIANTS = [
    ("qwen2", "qwen2", False),
    ("llama-bpe", "llama-bpe", None),
    ("default", "default", False),
    ("gpt-2", "gpt-2", False),
]

NAMES = ["Lily", "Tom", "Ben", "Mia", "Sam", "Anna", "Max", "Zoe", "Leo", "Ella"]
ANIMALS = ["dog", "cat", "bird", "fish", "bunny", "frog", "duck", "bear", "fox", "owl"]
PLACES = ["park", "garden", "forest", "house", "school", "beach", "farm", "river", "hill"]
THINGS = ["ball", "toy", "kite", "book", "apple", "box", "hat", "cake", "flower", "car"]
FEELINGS = ["happy", "sad", "scared", "excited", "tired", "proud", "angry", "surprised"]
VERBS = ["played", "ran", "jumped", "sang", "looked", "walked", "laughed", "smiled", "waited"]

STORY_TEMPLATES = [
    "Once upon a time, there was a little {animal} named {name}.",
    "{name} went to the {place} with {name2}. They {verb} all day.",
    "One day, {name} found a big {thing} in the {place}.",
    '"Can I have the {thing}?" asked {name}. "Yes, you can!" said {name2}.',
    "{name} was very {feeling}. {name} didn't want to go home.",
    "The {animal} said, \"I'm {feeling} because I lost my {thing}.\"",
    "They'll play again tomorrow, and it's going to be fun.",
    "{name} and {name2} {verb} in the {place}. The sun was warm.",
    "We're friends, you've been kind, and I'd like to help you.",
    "In the end, {name} learned to share the {thing} with everyone.",
]

CODE_SNIPPETS = [
    "fn main() {\n    let x = 42;\n    println!(\"{}\", x + 1);\n}\n",
    "def add(a, b):\n\treturn a + b  # sum\n\nprint(add(2, 3))\n",
    "for (int i = 0; i < n; ++i) { total += values[i] * 2; }\n",
    "#include <stdio.h>\nint main(void) { return 0; }\n",
    "const url = \"https://example.com/path?q=1&r=2\";\nif (a === b || c !== d) {}\n",
    "SELECT name, age FROM users WHERE age >= 18 ORDER BY name;\n",
    "x = [1, 2, 3]; y = {\"key\": \"value\", 'n': None}\n",
    "impl<T: Clone> Vec<T> { pub fn first(&self) -> Option<&T> { self.get(0) } }\n",
    "    if x > 0:\n        x -= 1\n    else:\n        x += 1\n",
    "/* comment */ // another comment\n<div class=\"box\">Hello</div>\n",
]

OTHER_TEXT = [
    "你好，世界！今天天气很好。我们去公园玩吧。",
    "小猫在花园里玩球。它很开心。",
    "日本語のテキストです。カタカナとひらがな。",
    "안녕하세요. 한국어 문장입니다.",
    "Emoji time 😀 🎉 👍 ❤️ 🐶 🌟!",
    "Café, naïve, résumé, façade, jalapeño, Zürich, Ørsted.",
    "Math: α + β = γ, ∑ x² ≤ ∞, π ≈ 3.14159.",
    "Prices: $5.99, €10, £7.50, ¥1000, 50% off!",
    "Dates: 2024-01-15, 12/31/1999, 10:30 AM.",
    "Phone 555-0123, call 1-800-555-0199 now.",
    "MIXED case Words LIKE This and THAT.",
    "Tabs\tseparate\tcolumns\tof\tdata.",
    "Lines\nwith\nbreaks\n\nand blank lines.\r\nWindows too.\r\n",
    "Lots   of    spaces     here.",
    "The quick brown fox jumps over the lazy dog.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 12345 67890 3.14 2.718",
]

WORDS = (
    "the of and to in is was for on that with as it at by from this be are have had not but "
    "or an they which one you were all we her she there would their will when who him been "
    "has more if no out so said what up its about into than them can only other new some "
    "could time these two may then do first any my now such like our over man me even most "
    "made after also did many before must through back years where much your way well down "
    "should because each just those people how too little state good very make world still "
    "own see men work long get here between both life being under never day same another "
    "know while last might us great old year off come since against go came right used take "
    "three small large next early young important few public bad able number night point "
    "house water room mother father family money story fact month lot study book eye job "
    "word business issue side kind head far black long both little white different whole "
    "government company problem question program system group country hand part place case "
    "week point government tokenizer inference engine model weights tensor kernel memory "
    "phone board laptop quantized matrix vector layer attention cache prompt sample"
).split()

# Test strings: (text, add_special, parse_special).
CASES = [
    ("Hello world", False, True),
    ("Hello world", True, True),
    ("Once upon a time, there was a little girl named Lily.", False, True),
    (" leading space", False, True),
    ("two  spaces   three    four", False, True),
    ("trailing space ", False, True),
    ("trailing spaces   ", False, True),
    ("line one\nline two\n\nline four\n", False, True),
    ("tabs\tand\t\tmore\t", False, True),
    ("\r\n windows \r\n", False, True),
    ("12345678", False, True),
    ("3.14159 and 1,000,000 and 2024-01-15", False, True),
    ("don't I'll we're they've she's he'd I'm", False, True),
    ("DON'T I'LL WE'RE THEY'VE", False, True),
    ("Hello, world! How are you? (fine) [ok] {yes}...", False, True),
    ("a+b=c; x->y; foo::bar(); #include <stdio.h>", False, True),
    ("fn main() {\n    println!(\"hi\");\n}\n", False, True),
    ("def f(x):\n\treturn x ** 2  # square", False, True),
    ("你好，世界！这是一个测试。", False, True),
    ("日本語のテキストとカタカナ", False, True),
    ("한국어 텍스트", False, True),
    ("Emoji: 😀🎉👍🏽 and ❤️", False, True),
    ("café naïve résumé Ω ∑ ∫", False, True),
    ("MiXeD CaSe WoRdS", False, True),
    ("<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", False, True),
    ("<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", False, False),
    ("<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", True, True),
    ("<|endoftext|>", False, True),
    ("text<|endoftext|>more text", False, True),
    ("", False, True),
    ("", True, True),
    (" ", False, True),
    ("\n", False, True),
    ("    indented code", False, True),
    ("URL: https://example.com/path?q=1&r=2", False, True),
    ("email@example.com", False, True),
    ("Ünïcödé 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math", False, True),
    ("123abc456def 7 89", False, True),
    ("  \n  \n", False, True),
    ("\u00a0non-breaking\u3000ideographic\u2003em space", False, True),
    ("The quick brown fox jumps over the lazy dog. " * 3, False, True),
    ("zzzzqqqq xylophone quixotic", False, True),
    ("'s 's 'S ' s''", False, True),
    ("!!!??? ... --- ***", False, True),
]


def corpus(seed=20240601):
    """Deterministic training text."""
    rng = random.Random(seed)
    lines = []
    for _ in range(3000):
        t = rng.choice(STORY_TEMPLATES)
        lines.append(
            t.format(
                name=rng.choice(NAMES),
                name2=rng.choice(NAMES),
                animal=rng.choice(ANIMALS),
                place=rng.choice(PLACES),
                thing=rng.choice(THINGS),
                feeling=rng.choice(FEELINGS),
                verb=rng.choice(VERBS),
            )
        )
    for _ in range(40):
        lines.extend(CODE_SNIPPETS)
        lines.extend(OTHER_TEXT)
    for _ in range(500):
        lines.append(" ".join(str(rng.randint(0, 10 ** rng.randint(1, 9))) for _ in range(5)))
    for _ in range(2500):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
        if rng.random() < 0.3:
            words[0] = words[0].capitalize()
        if rng.random() < 0.1:
            words = [w.upper() for w in words]
        lines.append(" ".join(words) + rng.choice([".", ",", "!", "?", ";", ":", "", "..."]))
    rng.shuffle(lines)
    return lines


def train():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    return tok


def vocab_of(tok):
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    tokens = [None] * len(vocab)
    for text, i in vocab.items():
        tokens[i] = text
    assert all(t is not None for t in tokens)
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    return tokens, merges


def write_gguf(path, pre, add_bos, tokens, merges):
    ids = {t: i for i, t in enumerate(tokens)}
    types = [
        gguf.TokenType.CONTROL if t in SPECIALS else gguf.TokenType.NORMAL for t in tokens
    ]
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tern gpt2 tokenizer test vocab")
    w.add_context_length(4096)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(1)
    w.add_head_count_kv(1)
    w.add_rope_dimension_count(8)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(ids["<|endoftext|>"])
    w.add_eos_token_id(ids["<|im_end|>"])
    w.add_pad_token_id(ids["<|endoftext|>"])
    if add_bos is not None:
        w.add_add_bos_token(add_bos)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_cpp_ids(path, n_tokens):
    import ctypes

    import llama_cpp

    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    cases = []
    for text, add_special, parse_special in CASES:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=parse_special)
        cases.append(
            {
                "text": text,
                "add_special": add_special,
                "parse_special": parse_special,
                "llama_cpp_ids": list(ids),
            }
        )
    vocab = llm._model.vocab
    pieces = []
    buf = ctypes.create_string_buffer(256)
    for i in range(n_tokens):
        n = llama_cpp.llama_token_to_piece(vocab, i, buf, 256, 0, False)
        assert 0 <= n <= 256
        pieces.append(buf.raw[:n].hex())
    eog = [i for i in range(n_tokens) if llama_cpp.llama_vocab_is_eog(vocab, i)]
    info = {
        "bos": llama_cpp.llama_vocab_bos(vocab),
        "eos": llama_cpp.llama_vocab_eos(vocab),
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
        "end_of_generation": eog,
    }
    return cases, pieces, info


def tokenizers_ids(tok):
    """The `tokenizers` library's ids for the same cases (parse_special only; no BOS)."""
    out = []
    for text, add_special, parse_special in CASES:
        out.append(tok.encode(text, add_special_tokens=False).ids if parse_special else None)
    return out


def vendored_lib_versions():
    """llama-cpp-python builds llama.cpp from its vendored copy; the shared library names carry
    the ggml and libllama versions."""
    import llama_cpp

    lib = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    out = {}
    for name in sorted(os.listdir(lib)) if os.path.isdir(lib) else []:
        for stem in ("libggml.so.", "libllama.so."):
            rest = name[len(stem):] if name.startswith(stem) else ""
            if rest.count(".") == 2:
                out[stem.split(".")[0]] = rest
    return out


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "testdata/gpt2_tokenizer"
    os.makedirs(out_dir, exist_ok=True)
    tok = train()
    tokens, merges = vocab_of(tok)
    hf_ids = tokenizers_ids(tok)

    import llama_cpp

    reference = {
        "about": "Byte-level BPE test vocabulary trained by scripts/gpt2_tokenizer/make_vocab.py; "
        "ids recorded from llama.cpp (llama-cpp-python, vocab_only). "
        "llama_cpp_ids include BOS/EOS exactly as llama.cpp added them for add_special.",
        "versions": {
            "llama_cpp_python": llama_cpp.__version__,
            "tokenizers": metadata.version("tokenizers"),
            "gguf": metadata.version("gguf"),
            "python": sys.version.split()[0],
            **vendored_lib_versions(),
        },
        "n_vocab": len(tokens),
        "n_merges": len(merges),
        "specials": {t: tokens.index(t) for t in SPECIALS},
        "variants": [],
        "pieces_hex": None,
    }
    for stem, pre, add_bos in VARIANTS:
        path = os.path.join(out_dir, f"{stem}.gguf")
        write_gguf(path, pre, add_bos, tokens, merges)
        cases, pieces, info = llama_cpp_ids(path, len(tokens))
        if pre == "qwen2":
            # The trainer used Qwen2's regex, so its ids must agree where no BOS is involved.
            for case, ids in zip(cases, hf_ids):
                if ids is not None and not case["add_special"]:
                    case["tokenizers_ids"] = ids
        reference["variants"].append(
            {
                "file": f"{stem}.gguf",
                "pre": pre,
                "add_bos_key": add_bos,
                "sha256": sha256(path),
                "bytes": os.path.getsize(path),
                "llama_cpp": info,
                "cases": cases,
            }
        )
        # A token's piece does not depend on the pre-tokenizer; keep one copy.
        assert reference["pieces_hex"] in (None, pieces)
        reference["pieces_hex"] = pieces
    with open(os.path.join(out_dir, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(reference, f, ensure_ascii=False, indent=1)
        f.write("\n")
    for v in reference["variants"]:
        compared = [c for c in v["cases"] if "tokenizers_ids" in c]
        agree = sum(1 for c in compared if c["tokenizers_ids"] == c["llama_cpp_ids"])
        print(f"{v['file']}: {v['bytes']} bytes, {len(v['cases'])} cases"
              + (f", tokenizers agrees on {agree}/{len(compared)}" if compared else ""))


if __name__ == "__main__":
    main()
