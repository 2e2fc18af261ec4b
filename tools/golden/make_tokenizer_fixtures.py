"""Write the tokenizer fixtures (tests/golden/tokenizer/): a byte-level BPE trained with HF `tokenizers` on the
tinyshakespeare training split, the same ranks as a Kimi-style tiktoken encoding, and expected encodings.

    python3 tools/golden/make_tokenizer_fixtures.py --data .scratch/data/tinyshakespeare.txt \
        --out tests/golden/tokenizer

Needs tokenizers and tiktoken (no torch). The BPE tokenizer.json is also the demo model's tokenizer.
"""
import argparse
import base64
import json
import os
import sys

SPLIT = 0.9  # first 90% of the characters train, the rest is validation (same split as train_demo.py)
VOCAB_SIZE = 4096
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ADDED_NORMAL = ["<think>", "</think>"]  # added tokens that are not special (kept by skip_special_tokens)

# Qwen2 / GPT-4 style pre-tokenizer split (single digits), applied before the byte-level mapping.
BPE_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# Moonshot's TikTokenTokenizer.pat_str (tokenization_kimi.py, Kimi-K2 / Kimi-Linear), joined with "|".
KIMI_PATTERN = "|".join([
    r"""[\p{Han}]+""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+"""
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*"""
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
TIKTOKEN_SPECIALS = ["[BOS]", "[EOS]", "<|im_end|>", "<|im_user|>", "<|im_assistant|>", "<|endoftext|>"]


def byte_to_unicode():
    """GPT-2's reversible byte -> printable character map used by byte-level BPE."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def test_texts(val_text):
    start = val_text.index("\n", 1000) + 1
    return [
        "Hello, world! This is a test of the tokenizer.",
        val_text[start:start + 400],
        "ROMEO:\nBut, soft! what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n",
        "def f(x):\n    if x > 0:\n        return {\"a\": [1, 2, 3]}\n\treturn None\n",
        "int main() {\n  for (int i = 0; i < 10; ++i) { printf(\"%d\\n\", i); }\n}\n",
        "a  b   c    d\t\te\n\n\nf \n \n  \r\n\r\n   ",
        "    ", "\n", " ", "\t\t", "x\n\n\n\n\n\ny",
        "1234567890 3.14159 -42 1,000,000 2024-11-27 0x1F 12345",
        "你好，世界！这是一个测试。日本語のテキストも。한국어 텍스트",
        "Kimi模型在2025年发布了Kimi-Linear。",
        "I \u2764\ufe0f \U0001F980 and \U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 family "
        "\U0001F44D\U0001F3FD flags \U0001F1EB\U0001F1F7\U0001F1EF\U0001F1F5",
        "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c5ngstr\u00f6m e\u0301 n\u0303 Z\u0351\u0361a\u0314l\u0348g\u0350o",
        "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n<think>hmm</think>Hi!<|endoftext|>",
        "<|endoftext|><|endoftext|> [BOS]x[EOS] <|endoftext <|im_start|",
        "",
        "I'm sure you'll see they've done it; DON'T YOU'D've",
        "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440, \u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 "
        "\u03ba\u03cc\u03c3\u03bc\u03b5, \u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645, "
        "\u0928\u092e\u0938\u094d\u0924\u0947",
        "a" * 64,
        "\x00\x01\x7f tab\there \u00a0nbsp \u2028 \ufeff",
        "HTTPServerError XMLHttpRequest iPhone McDonald's",
    ]


INVALID_UTF8 = [
    b"ok \xff\xfe bad \xc3( \xe2\x82 trunc \xf0\x9f\x98",
    b"\xed\xa0\x80 surrogate \xc0\xaf overlong",
    b"\x80\x80\x80",
]


def train_bpe(train_text):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(BPE_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, show_progress=False,
                                  special_tokens=[AddedToken(s, special=True, normalized=False) for s in SPECIALS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([train_text], trainer=trainer)
    tok.add_tokens([AddedToken(s, special=False, normalized=False) for s in ADDED_NORMAL])
    return tok


def bpe_config(tok):
    decoder = {}
    for i, t in sorted(tok.get_added_tokens_decoder().items()):
        decoder[str(i)] = {"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized,
                           "rstrip": t.rstrip, "single_word": t.single_word, "special": t.special}
    return {"added_tokens_decoder": decoder, "bos_token": None, "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>", "unk_token": None, "add_bos_token": False,
            "clean_up_tokenization_spaces": False, "model_max_length": 1024,
            "tokenizer_class": "PreTrainedTokenizerFast"}


def byte_level_ranks(tok):
    """tiktoken ranks with the same merges: the 256 bytes (rank = byte value), then each merge in order."""
    inv = {c: b for b, c in byte_to_unicode().items()}
    model = json.loads(tok.to_str())["model"]
    ranks = {bytes([b]): b for b in range(256)}
    for m in model["merges"]:
        a, b = m if isinstance(m, list) else m.split(" ")
        piece = bytes(inv[c] for c in a + b)
        if piece in ranks:
            raise RuntimeError(f"merge {a!r}+{b!r} repeats a token")
        ranks[piece] = len(ranks)
    return ranks


def write_tiktoken(ranks, path):
    with open(path, "w", encoding="ascii") as f:
        for piece, r in sorted(ranks.items(), key=lambda kv: kv[1]):
            f.write(f"{base64.b64encode(piece).decode()} {r}\n")


def tiktoken_config(specials):
    decoder = {str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                        "single_word": False, "special": True} for s, i in specials.items()}
    return {"added_tokens_decoder": decoder, "bos_token": "[BOS]", "eos_token": "[EOS]",
            "pad_token": "<|endoftext|>", "unk_token": None, "additional_special_tokens": list(specials),
            "model_max_length": 1048576, "tokenizer_class": "TikTokenTokenizer",
            "auto_map": {"AutoTokenizer": ["tokenization_kimi.TikTokenTokenizer", None]}}


def text_entry(t):
    if isinstance(t, bytes):
        return {"bytes_hex": t.hex()}, t.decode("utf-8", errors="replace")
    return {"text": t}, t


def decode_only_cases(tok):
    """Id sequences whose bytes are not whole characters, and streaming-decode expectations."""
    b2u = byte_to_unicode()

    def byte_ids(bs):
        return [tok.token_to_id(b2u[b]) for b in bs]

    seqs = {
        "lone_lead_byte_e_acute": byte_ids(b"\xc3"),
        "e_acute_from_two_byte_tokens": byte_ids("\u00e9".encode()),
        "emoji_first_two_bytes_then_a": byte_ids("\U0001F980".encode()[:2]) + byte_ids(b"a"),
        "cjk_missing_last_byte_twice": byte_ids("\u4f60".encode()[:2]) * 2,
        "continuation_bytes_only": byte_ids(b"\x80\xbf"),
        "split_then_special": byte_ids("\u00e9".encode()[:1]) + [tok.token_to_id("<|endoftext|>")],
    }
    out = {"rule": "decode(ids, skip_special_tokens=False) of HF tokenizers: the byte-level decoder joins the "
                   "bytes and converts them with UTF-8 'lossy' decoding (each maximal invalid subpart -> U+FFFD)",
           "bpe": []}
    for name, ids in seqs.items():
        if any(i is None for i in ids):
            raise RuntimeError(f"decode_only {name}: a byte has no token")
        out["bpe"].append({"name": name, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})

    try:
        from tokenizers.decoders import DecodeStream
    except ImportError:
        out["stream"] = None
        return out
    streams = []
    for name, ids in [("emoji_bytewise", byte_ids("\U0001F980".encode()) + byte_ids(b"!")),
                      ("cjk_text", tok.encode("\u4f60\u597d\uff0c\u4e16\u754c a\u00e9").ids),
                      ("zwj_family", tok.encode("\U0001F468\u200d\U0001F469\u200d\U0001F467 ok").ids),
                      ("with_special", tok.encode("hi<|im_end|>\u00e9").ids)]:
        ds = DecodeStream(skip_special_tokens=False)
        steps = [ds.step(tok, i) for i in ids]
        streams.append({"name": name, "ids": ids, "steps": steps})
    out["stream"] = {"rule": "tokenizers.decoders.DecodeStream(skip_special_tokens=False).step(tok, id) for each "
                             "id in order: the new text once it forms complete characters, else null",
                     "cases": streams}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=".scratch/data/tinyshakespeare.txt")
    ap.add_argument("--out", default="tests/golden/tokenizer")
    args = ap.parse_args()
    import tiktoken
    import tokenizers

    text = open(args.data, encoding="utf-8").read()
    n_train = int(len(text) * SPLIT)
    train_text, val_text = text[:n_train], text[n_train:]
    print(f"tinyshakespeare: {len(text)} chars, train {len(train_text)}, val {len(val_text)}")

    tok = train_bpe(train_text)
    bpe_dir, tt_dir = os.path.join(args.out, "bpe"), os.path.join(args.out, "tiktoken")
    os.makedirs(bpe_dir, exist_ok=True)
    os.makedirs(tt_dir, exist_ok=True)
    tok.save(os.path.join(bpe_dir, "tokenizer.json"))
    with open(os.path.join(bpe_dir, "tokenizer_config.json"), "w") as f:
        json.dump(bpe_config(tok), f, indent=1)
    print(f"BPE vocab {tok.get_vocab_size()} (with added tokens); tokens/char on val: "
          f"{len(tok.encode(val_text).ids) / len(val_text):.4f}")

    # tiktoken: same byte-level merges, Kimi's split pattern, specials after the base ranks.
    ranks = byte_level_ranks(tok)
    specials = {s: len(ranks) + i for i, s in enumerate(TIKTOKEN_SPECIALS)}
    model_path = os.path.join(tt_dir, "tiktoken.model")
    write_tiktoken(ranks, model_path)
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # read the file itself, never a cached copy
    from tiktoken.load import load_tiktoken_bpe
    if load_tiktoken_bpe(model_path) != ranks:
        raise RuntimeError("tiktoken.model does not load back to the same ranks")
    with open(os.path.join(tt_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tiktoken_config(specials), f, indent=1)
    enc = tiktoken.Encoding(name="linfer_kimi_style", pat_str=KIMI_PATTERN, mergeable_ranks=ranks,
                            special_tokens=specials)

    bpe_cases, tt_cases = [], []
    for t in test_texts(val_text) + INVALID_UTF8:
        key, s = text_entry(t)
        e = tok.encode(s)
        bpe_cases.append({**key, "ids": e.ids, "tokens": e.tokens,
                          "decoded": tok.decode(e.ids, skip_special_tokens=False),
                          "decoded_skip_special": tok.decode(e.ids, skip_special_tokens=True)})
        ids = enc.encode(s, allowed_special="all")
        entry = {**key, "ids": ids, "decoded_bytes_hex": enc.decode_bytes(ids).hex()}
        ordinary = enc.encode_ordinary(s)
        if ordinary != ids:
            entry["ids_ordinary"] = ordinary
        tt_cases.append(entry)
        if isinstance(t, str) and tok.decode(e.ids, skip_special_tokens=False) != t:
            print(f"  note: BPE round trip differs for {t[:40]!r}")

    # Cross-check: the demo/HF path reads the same tokenizer (transformers may be absent: then skip).
    try:
        from transformers import AutoTokenizer
        hf = AutoTokenizer.from_pretrained(bpe_dir)
        bad = [c["text"][:40] for c in bpe_cases
               if "text" in c and hf.encode(c["text"], add_special_tokens=False) != c["ids"]]
        print(f"transformers {type(hf).__name__}: " +
              (f"WARNING encodes differently: {bad}" if bad else "agrees with tokenizers on every text"))
    except Exception as e:  # noqa: BLE001 — the cross-check is informational
        print(f"transformers AutoTokenizer cross-check skipped: {type(e).__name__}: {e}")

    doc = {
        "tokenizers_version": tokenizers.__version__, "tiktoken_version": tiktoken.__version__,
        "source": f"tinyshakespeare, first {SPLIT:.0%} of the characters (training split), vocab {VOCAB_SIZE}",
        "rules": {
            "bytes_hex": "raw bytes that are not valid UTF-8; the expected ids are those of "
                         "bytes.decode('utf-8', errors='replace') (each maximal invalid subpart -> U+FFFD)",
            "bpe": "ids = Tokenizer.encode(text).ids (no BOS/EOS added; special and added tokens are matched in "
                   "the text first); decoded = decode(ids, skip_special_tokens=False); no normalizer",
            "tiktoken": "ids = Encoding.encode(text, allowed_special='all'); ids_ordinary (only where different) "
                        "= encode_ordinary(text); decoded_bytes_hex = decode_bytes(ids).hex()",
        },
        "bpe_pattern": BPE_PATTERN,
        "tiktoken_pattern": KIMI_PATTERN,
        "tiktoken_specials": specials,
        "bpe": bpe_cases,
        "tiktoken": tt_cases,
        "decode_only": decode_only_cases(tok),
    }
    with open(os.path.join(args.out, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
    print(f"wrote {len(bpe_cases)} BPE and {len(tt_cases)} tiktoken cases to {args.out}")
    for c in bpe_cases[:3] + tt_cases[:3]:
        print("  ", json.dumps(c, ensure_ascii=False)[:200])
    return 0


if __name__ == "__main__":
    sys.exit(main())
