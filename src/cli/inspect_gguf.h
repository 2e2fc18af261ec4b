#pragma once
// `linfer inspect FILE.gguf`: the file as llama.cpp wrote it (metadata summary, every tensor's type,
// shape and bits per weight, totals per type).

#include <string>

namespace linfer::cli {

void print_gguf(const std::string& path);

}  // namespace linfer::cli
