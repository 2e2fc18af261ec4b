#pragma once
// The CPU's flags as the Linux kernel reports them in /proc/cpuinfo: a source independent of the
// compiler's __builtin_cpu_supports that linfer's SIMD choice uses. Names are spelled as GCC spells
// them (the kernel's avx512_bf16 becomes avx512bf16). Empty where /proc/cpuinfo is unreadable.

#include <fstream>
#include <set>
#include <sstream>
#include <string>

inline std::set<std::string> cpuinfo_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::set<std::string> flags;
    for (std::string w; words >> w;) {
      std::erase(w, '_');
      flags.insert(w);
    }
    return flags;
  }
  return {};
}

// The SIMD path linfer must run on a CPU with these flags when nothing lowers it: its avx2 kernels
// are compiled for AVX2 + FMA + F16C; it has no AVX-512 kernels, so AVX-512 changes nothing.
inline std::string best_simd_path(const std::set<std::string>& flags) {
  return flags.count("avx2") && flags.count("fma") && flags.count("f16c") ? "avx2" : "scalar";
}
