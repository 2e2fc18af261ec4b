#pragma once
// Kimi's pre-tokenizer pattern, exactly as Moonshot's tokenization_kimi.py writes it
// (TikTokenTokenizer.pat_str: eight alternatives joined with "|"). Kimi checkpoints do not store it;
// their tokenizer code hard-codes it, and so does linfer. It is written for the Rust `regex` engine
// inside tiktoken (class intersections "&&"); translate_pattern() (regex.h) makes it PCRE2's, and
// tests/tokenizer checks the original against the fixture's record of the reference pattern.

#include <string_view>

namespace linfer::tok {

inline constexpr std::string_view kKimiPattern =
    R"([\p{Han}]+)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*)"
    R"(|\s*[\r\n]+)"
    R"(|\s+(?!\S))"
    R"(|\s+)";

// Kimi's tokenizer reserves this many ids after the base ranks for special tokens; those that
// tokenizer_config.json does not name are "<|reserved_token_{id}|>".
inline constexpr int kKimiReservedSpecialTokens = 256;

}  // namespace linfer::tok
