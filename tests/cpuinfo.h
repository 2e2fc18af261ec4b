#pragma once
// The CPU's flags as the Linux kernel reports them in /proc/cpuinfo: a source independent of the
// compiler's __builtin_cpu_supports that linfer's SIMD choice uses. Names are spelled as GCC spells
// them (the kernel's avx512_bf16 becomes avx512bf16). Empty where /proc/cpuinfo is unreadable or
// describes another architecture.

#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>
#include <string>

inline std::set<std::string> cpuinfo_flags() {
#if defined(__aarch64__)
  const std::string key = "Features";  // absent under qemu-user, which shows the host's x86 file
#else
  const std::string key = "flags";
#endif
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
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

// The SIMD path linfer must run on a CPU with these flags when nothing lowers it. x86-64: avx2 needs
// AVX2 + FMA + F16C + BMI2 (its Highway code may use BMI2), avx512 adds AVX-512 F/BW/DQ/VL; there is
// no path for AVX-512 BF16 or FP16. aarch64: neon needs Advanced SIMD.
inline std::string best_simd_path(const std::set<std::string>& flags) {
  auto all = [&](std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (!flags.count(n)) return false;
    return true;
  };
#if defined(__aarch64__)
  return all({"asimd"}) ? "neon" : "scalar";
#else
  if (!all({"avx2", "fma", "f16c", "bmi2"})) return "scalar";
  return all({"avx512f", "avx512bw", "avx512dq", "avx512vl"}) ? "avx512" : "avx2";
#endif
}
