// linfer quantize --model DIR --out DIR2 --bits 8|4 [--type q8_0|q4_0|q4_k]
// Writes a Hugging Face-style folder whose linear-layer weights are block-quantized (docs/quantization.md):
// config.json, tokenizer and every other non-weight file copied; one model.safetensors in which each
// quantized tensor is U8 [..., bytes per row] named by a "linfer.quant.<name>" __metadata__ entry. Norms,
// the token embedding, MoE router gates, conv taps and the per-channel state parameters stay as stored.
// A weight whose rows are not whole blocks of the type falls back (q4_k -> q4_0 for rows that are whole
// 32-blocks only) or stays as stored. The folder is loaded once at the end, so a folder this writes runs.

#include <dirent.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>

#include "cli/commands.h"
#include "core/quant_formats.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "kernels/cpu/quant/quantize.h"
#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"
#include "linfer/model.h"
#include "models/registry.h"

namespace linfer::cli {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  LINFER_CHECK(d, "cannot open {}: {}", dir, std::strerror(errno));
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

void copy_file(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary);
  LINFER_CHECK(in && out, "cannot copy {} to {}", from, to);
  out << in.rdbuf();
  LINFER_CHECK(out.good(), "writing {} failed", to);
}

// The type a tensor is written as: `target` for the matrices of linear layers whose rows are whole
// blocks, q4_0 for q4_k rows that are whole 32-blocks only, otherwise nullopt (kept as stored).
std::optional<DType> type_for(const std::string& name, const SafetensorsEntry& e, const ModelConfig& cfg,
                              DType target) {
  if (!e.dtype || !(e.dtype == DType::F32 || e.dtype == DType::BF16 || e.dtype == DType::F16)) return std::nullopt;
  if (e.shape.size() < 2 || !ends_with(name, ".weight") || name == cfg.embed) return std::nullopt;
  for (const char* keep : {"norm", "conv"})  // norms and depthwise conv taps
    if (name.find(keep) != std::string::npos) return std::nullopt;
  for (const char* router : {".gate.weight", "shared_expert_gate.weight"})  // MoE routers: small, sensitive
    if (ends_with(name, router)) return std::nullopt;
  const int64_t K = e.shape.back();
  if (K == 0) return std::nullopt;
  if (K % dtype_block(target) == 0) return target;
  if (target == DType::Q4_K && K % dtype_block(DType::Q4_0) == 0) return DType::Q4_0;
  return std::nullopt;
}

struct Args {
  std::string model, out, type;
  int bits = 0;
};

void run(const Args& a) {
  LINFER_CHECK(a.bits == 8 || a.bits == 4, "--bits {}: choose 8 (q8_0) or 4 (q4_k, or --type q4_0)", a.bits);
  DType target = a.bits == 8 ? DType::Q8_0 : DType::Q4_K;
  if (!a.type.empty()) {
    const auto t = quant::dtype_from_name(a.type);
    LINFER_CHECK(t && kernels::can_quantize(*t), "--type {}: linfer writes q8_0, q4_0 or q4_k", a.type);
    LINFER_CHECK((*t == DType::Q8_0) == (a.bits == 8), "--type {} is not a {}-bit type", a.type, a.bits);
    target = *t;
  }
  LINFER_CHECK(is_dir(a.model), "--model {}: not a folder", a.model);
  LINFER_CHECK(a.out != a.model, "--out must differ from --model");
  if (is_dir(a.out)) LINFER_CHECK(files_in(a.out).empty(), "--out {}: the folder exists and is not empty", a.out);
  else LINFER_CHECK(::mkdir(a.out.c_str(), 0755) == 0, "cannot create {}: {}", a.out, std::strerror(errno));

  const ModelConfig cfg = build_model_config(Config::load(a.model + "/config.json"));
  const SafetensorsDir src(a.model);
  const std::vector<std::string> names = src.names();

  // Each quantized tensor's type and U8 shape [..., bytes per row].
  struct Planned {
    DType type;
    Shape bytes_shape;
    size_t nbytes;
  };
  std::map<std::string, std::string> meta = {{"format", "pt"}};
  std::map<std::string, Planned> plan;
  size_t in_bytes = 0, out_bytes = 0;
  int64_t quantized_params = 0, kept_params = 0;
  std::map<DType, int> per_type;
  for (const auto& name : names) {
    const SafetensorsEntry& e = src.entry(name);
    LINFER_CHECK(!e.dtype || !is_quantized(*e.dtype), "--model {} is already quantized (tensor '{}' is {}): quantize "
                 "the bf16 / f32 checkpoint instead", a.model, name, dtype_name(*e.dtype));
    in_bytes += e.end - e.begin;
    if (auto t = type_for(name, e, cfg, target)) {
      const int64_t K = e.shape.back(), rows = shape_numel(e.shape) / K;
      Shape bytes_shape = e.shape;
      bytes_shape.back() = int64_t(dtype_nbytes(*t, K));
      plan[name] = {*t, bytes_shape, size_t(rows) * dtype_nbytes(*t, K)};
      ++per_type[*t];
      meta[std::string(kQuantMetadataPrefix) + name] = std::string(dtype_name(*t));
      out_bytes += plan[name].nbytes;
      quantized_params += shape_numel(e.shape);
    } else {
      out_bytes += e.end - e.begin;
      kept_params += shape_numel(e.shape);
    }
  }
  LINFER_CHECK(!plan.empty(), "{}: no linear-layer weight has rows of whole {}-element blocks; nothing to quantize",
               a.model, dtype_block(target));
  SafetensorsWriter out(a.out + "/model.safetensors", meta);
  for (const auto& name : names) {
    const SafetensorsEntry& e = src.entry(name);
    if (auto it = plan.find(name); it != plan.end()) {
      out.declare(name, "U8", it->second.bytes_shape, it->second.nbytes);
    } else {
      out.declare(name, e.dtype_name, e.shape, e.end - e.begin);
    }
  }
  out.begin();

  fmt::print(stderr, "quantize: {} tensors of {} -> {} ({} as {}, the rest as stored)\n", names.size(), a.model,
             a.out, plan.size(), dtype_name(target));
  const auto t0 = std::chrono::steady_clock::now();
  auto last = t0;
  size_t done_bytes = 0;
  std::vector<uint8_t> buf;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    const SafetensorsEntry& e = src.entry(name);
    if (auto it = plan.find(name); it != plan.end()) {
      const TensorView v = src.get(name);
      const DType t = it->second.type;
      const int64_t K = e.shape.back(), rows = shape_numel(e.shape) / K;
      const size_t row_bytes = dtype_nbytes(t, K), in_row = size_t(K) * dtype_size(v.dtype());
      buf.resize(size_t(rows) * row_bytes);
      parallel_for(0, rows, [&](int64_t r0, int64_t r1) {
        std::vector<float> row(static_cast<size_t>(K));
        for (int64_t r = r0; r < r1; ++r) {
          to_f32(v.dtype(), static_cast<const std::byte*>(v.data()) + size_t(r) * in_row, row.data(), size_t(K));
          try {
            kernels::quantize_row(t, row.data(), buf.data() + size_t(r) * row_bytes, K);
          } catch (const Error& err) {
            fail("tensor '{}' row {}: {}", name, r, err.what());
          }
        }
      }, 16);
      out.write(buf.data(), buf.size());
    } else {
      out.write(src.get(name).data(), e.end - e.begin);
    }
    done_bytes += e.end - e.begin;
    const auto now = std::chrono::steady_clock::now();
    if (now - last > std::chrono::seconds(2) || i + 1 == names.size()) {
      last = now;
      fmt::print(stderr, "quantize: {:5.1f}% ({}/{} tensors, {:.1f} s)\n", 100.0 * double(done_bytes) / double(in_bytes),
                 i + 1, names.size(), std::chrono::duration<double>(now - t0).count());
    }
  }
  out.finish();

  for (const auto& f : files_in(a.model)) {
    const std::string p = a.model + "/" + f;
    if (is_dir(p) || ends_with(f, ".safetensors") || f == "model.safetensors.index.json") continue;
    copy_file(p, a.out + "/" + f);
  }
  // Load what was written: a weight the model reads as a small parameter, or a type it cannot multiply,
  // fails here rather than at the user's first run.
  auto model = Model::load(a.out);
  std::string types;
  for (const auto& [t, n] : per_type) types += fmt::format("{}{} {}", types.empty() ? "" : ", ", n, dtype_name(t));
  fmt::print("quantized {} tensors ({}), {} parameters; {} kept as stored ({} parameters)\n", plan.size(), types,
             quantized_params, names.size() - plan.size(), kept_params);
  fmt::print("weights: {:.1f} MiB -> {:.1f} MiB; fingerprint {}\n", double(in_bytes) / 1048576,
             double(out_bytes) / 1048576, model->fingerprint());
}

}  // namespace

void add_quantize(CLI::App& app) {
  auto* cmd = app.add_subcommand("quantize", "write a copy of a model folder with 8- or 4-bit linear layers");
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "Hugging Face model folder")->required();
  cmd->add_option("--out", a->out, "new folder to write (must not exist or be empty)")->required();
  cmd->add_option("--bits", a->bits, "8 (q8_0) or 4 (q4_k by default)")->required();
  cmd->add_option("--type", a->type, "q8_0, q4_0 or q4_k (must match --bits)");
  cmd->callback([a] { run(*a); });
}

}  // namespace linfer::cli
