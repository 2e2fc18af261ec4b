#!/usr/bin/python3
"""Run llama.cpp's own, unmodified convert_hf_to_gguf.py under Debian 12's Python stack.

    convert_wrapper.py LLAMA_CPP_DIR [converter arguments...]

Called by bench/peer/gguf.sh (see there for the whole procedure). Every adjustment is made from here,
in memory, before the converter runs; llama.cpp's files are never edited:

- No `transformers`: Debian 12 does not package it. The converter imports AutoConfig at module load
  and, when AutoConfig fails, reads config.json itself; a stub whose loaders always raise sends it down
  that path. Skipped when a real transformers is importable.
- torch 1.13 (Debian 12) has no float8 dtypes, yet the converter names torch.float8_e4m3fn and
  torch.float8_e5m2 in class-level tables. Each gets a distinct placeholder object, so the tables build
  and any real FP8 checkpoint still fails loudly instead of being misread. Skipped on newer torch.
- Qwen3-Next and Kimi-Linear take their vocabulary only through transformers' AutoTokenizer (a known
  Hugging Face tokenizer). Our random models have no tokenizer; gguf.sh puts a small SentencePiece
  tokenizer.model beside them, and for these two architectures set_vocab then uses the converter's
  own SentencePiece reader, which pads the vocabulary to the config's vocab_size. Without a
  tokenizer.model the original set_vocab runs unchanged.
"""

import runpy
import sys
import types
from pathlib import Path

SPM_ARCHS = ("Qwen3NextForCausalLM", "KimiLinearForCausalLM")


def stub_transformers():
    try:
        import transformers  # noqa: F401
        return
    except ImportError:
        pass

    class _Unavailable:
        @classmethod
        def from_pretrained(cls, *args, **kwargs):
            raise OSError("transformers is not installed (stub from bench/peer/convert_wrapper.py)")

    mod = types.ModuleType("transformers")
    mod.__getattr__ = lambda name: _Unavailable  # AutoConfig, AutoTokenizer, ...
    sys.modules["transformers"] = mod


def alias_float8(torch):
    class _MissingDtype:
        def __init__(self, name):
            self.name = name

        def __repr__(self):
            return f"torch.{self.name} (absent in torch {torch.__version__})"

    for name in ("float8_e4m3fn", "float8_e5m2"):
        if not hasattr(torch, name):
            setattr(torch, name, _MissingDtype(name))


def sentencepiece_vocab(conversion):
    for arch in SPM_ARCHS:
        cls = conversion.get_model_class(arch)
        original = cls.set_vocab

        def set_vocab(self, _original=original):
            if (self.dir_model / "tokenizer.model").is_file():
                self._set_vocab_sentencepiece()
            else:
                _original(self)

        cls.set_vocab = set_vocab


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    llama_dir = Path(sys.argv[1]).resolve()
    converter = llama_dir / "convert_hf_to_gguf.py"
    if not converter.is_file():
        sys.exit(f"{converter}: not found")
    # The converter imports its `conversion` package (beside it) and prefers the gguf-py in its tree.
    sys.path[:0] = [str(llama_dir), str(llama_dir / "gguf-py")]

    import torch
    stub_transformers()
    alias_float8(torch)
    import conversion
    sentencepiece_vocab(conversion)

    sys.argv = [str(converter)] + sys.argv[2:]
    runpy.run_path(str(converter), run_name="__main__")


if __name__ == "__main__":
    main()
