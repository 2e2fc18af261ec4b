// Model::load and the one forward path every architecture shares:
//   x = embed(tokens)
//   per layer: x += mixer(norm_in(x)); if ffn: x += ffn(norm_post(x))
//   logits = lm_head(norm_final(x))   (rows per Logits mode)
// LINFER_DUMP=DIR writes the residual stream after the embedding and after each layer as
// DIR/hidden_<i>.npy (i = 0 embedding, i = l + 1 after layer l) and DIR/final_norm.npy: the same
// layout as transformers' output_hidden_states, for layer-by-layer diffs against a fixture.

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>
#include <xxhash.h>

#include "backend/backend.h"
#include "backend/device_slots.h"
#include "backend/host_slots.h"
#include "ffn/ffn.h"
#include "io/config.h"
#include "io/npy.h"
#include "linfer/core/error.h"
#include "linfer/model.h"
#include "mixers/mixer.h"
#include "models/load_layers.h"
#include "models/profile.h"
#include "models/registry.h"
#include "models/weights.h"

namespace linfer {

namespace {

// Architecture + a hash of config.json and the weights. Every tensor's name, dtype and shape are
// hashed; so are its bytes when it is at most 4 MiB, otherwise three 64 KiB samples (start, middle,
// end), so fingerprinting a 100 GB checkpoint reads ~200 KB per tensor instead of everything.
std::string fingerprint_of(const std::string& arch, const std::string& config_text, const Checkpoint& files) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  XXH3_64bits_update(st, config_text.data(), config_text.size());
  constexpr size_t kWhole = 4u << 20, kSample = 64u << 10;
  for (const auto& name : files.names()) {
    const auto& e = files.entry(name);
    const std::string meta = fmt::format("{}|{}|{}", name, e.dtype_name, shape_str(e.shape));
    XXH3_64bits_update(st, meta.data(), meta.size());
    if (!e.dtype) continue;
    const std::byte* bytes = e.bytes.data();
    const size_t n = e.bytes.size();
    if (n <= kWhole) {
      XXH3_64bits_update(st, bytes, n);
    } else {
      XXH3_64bits_update(st, bytes, kSample);
      XXH3_64bits_update(st, bytes + n / 2, kSample);
      XXH3_64bits_update(st, bytes + n - kSample, kSample);
    }
  }
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return fmt::format("{}-{:016x}", arch, h);
}

struct Layer {
  std::unique_ptr<Mixer> mixer;
  std::unique_ptr<Ffn> ffn;
  Param in_norm, post_norm;  // [hidden]
  size_t first_tensor = 0;   // this layer's first state tensor
};

// The states of one call: host SequenceStates (CPU backend) or slots of a device pool.
struct CallStates {
  std::span<SequenceState* const> host = {};
  DeviceStateSlots* pool = nullptr;
  std::span<const int32_t> ids = {};  // the pool's slot of each sequence
  int64_t n_tokens(int64_t i) const { return pool ? pool->n_tokens(ids[i]) : host[i]->n_tokens(); }
  void advance(int64_t i, int64_t n) const {
    if (pool) pool->advance(ids[i], n);
    else host[i]->set_n_tokens(host[i]->n_tokens() + n);
  }
};

class LoadedModel final : public Model {
 public:
  LoadedModel(const std::string& dir, Device device);

  const ModelInfo& info() const override { return info_; }
  const StateSpec& state_spec() const override { return spec_; }
  const std::string& fingerprint() const override { return fingerprint_; }
  const std::string& dir() const override { return dir_; }
  void forward(const Batch& batch, std::span<SequenceState* const> states, float* logits,
               Logits mode) const override {
    if (be_->device() != Device::Cpu) return forward_staged(batch, states, logits, mode, nullptr);
    validate(batch, states, logits, mode);
    run(batch, {.host = states}, logits, mode, nullptr);
  }
  void forward_layerwise(const Batch& batch, std::span<SequenceState* const> states, float* logits, Logits mode,
                         FunctionRef<void(int)> on_layer) const override {
    if (be_->device() != Device::Cpu) return forward_staged(batch, states, logits, mode, &on_layer);
    validate(batch, states, logits, mode);
    run(batch, {.host = states}, logits, mode, &on_layer);
  }
  Device device() const override { return be_->device(); }
  std::unique_ptr<StateSlots> make_slots(int n) const override { return be_->make_slots(spec_, n); }
  void forward_slots(const Batch& batch, StateSlots& pool, std::span<const int32_t> slots, float* logits,
                     Logits mode) const override;

 private:
  // Every check forward() can make before it touches a state (the contract in linfer/model.h); ends
  // by reserving the Growing tensors' room for this call, which changes no state's contents.
  void validate(const Batch& batch, std::span<SequenceState* const> states, const float* logits,
                Logits mode) const;
  void validate_batch(const Batch& batch, size_t n_states, const float* logits, Logits mode) const;
  // The forward pass proper, after validation.
  void run(const Batch& batch, const CallStates& states, float* logits, Logits mode,
           const FunctionRef<void(int)>* on_layer) const;
  // forward() on a device: host states copied into staging slots, run there, copied back. With on_layer
  // (forward_layerwise), each layer's tensors are copied back as soon as the layer is done, then
  // on_layer reports it: the caller ships layer l while layer l + 1 runs on the device.
  void forward_staged(const Batch& batch, std::span<SequenceState* const> states, float* logits, Logits mode,
                      const FunctionRef<void(int)>* on_layer) const;
  kernels::NormWeight norm_weight() const {
    return cfg_.norm == NormKind::ZeroCentred ? kernels::NormWeight::OnePlus : kernels::NormWeight::Plain;
  }
  void norm(const Param& w, const Mat& x, const Mat& y) const {
    be_->rms_norm(x, w, y, float(cfg_.norm_eps), norm_weight());
  }
  // x += r, then y = norm(x).
  void add_norm(const Param& w, const Mat& x, const Mat& r, const Mat& y) const {
    be_->add_rms_norm(x, r, w, y, float(cfg_.norm_eps), norm_weight());
  }

  std::string dir_;
  ModelConfig cfg_;
  ModelInfo info_;
  StateSpec spec_;
  std::string fingerprint_;
  std::shared_ptr<Backend> be_;      // where the weights live and every op runs
  std::unique_ptr<WeightStore> ws_;  // owns the mmaps the CPU backend's weights point into
  Weight embed_, lm_head_;
  Param final_norm_;
  std::vector<Layer> layers_;
  const char* dump_ = nullptr;
  // A device backend runs one call at a time (one stream, one scratch); staging_ holds forward()'s
  // host states meanwhile.
  mutable std::mutex device_mu_;
  mutable std::unique_ptr<StateSlots> staging_;
};

LoadedModel::LoadedModel(const std::string& dir, Device device) : dir_(dir), be_(make_backend(device)) {
  ws_ = std::make_unique<WeightStore>(dir);  // a folder, or a .gguf file mapped to the same names
  WeightStore& ws = *ws_;
  const std::string& config_text = ws.files().config_text();
  cfg_ = build_model_config(Config::parse(config_text, ws.files().config_label()));
  // before the weights: the CPU backend drops the mapped pages of the weights it copies (CpuBackend::weight)
  fingerprint_ = fingerprint_of(cfg_.architecture, config_text, ws.files());

  const int64_t V = cfg_.vocab, Hd = cfg_.hidden;
  Backend& be = *be_;
  const TensorView embed = ws.take(cfg_.embed, {V, Hd});
  check_backend_runs(be, cfg_, embed.dtype());
  embed_ = be.weight(embed, WeightUse::Products);
  final_norm_ = be.param(ws.take_f32(cfg_.final_norm, Hd));
  if (cfg_.tie_embeddings && !ws.has(cfg_.lm_head)) lm_head_ = embed_;
  else lm_head_ = be.weight(ws.take(cfg_.lm_head, {V, Hd}), WeightUse::Products);

  for (size_t i = 0; i < cfg_.layers.size(); ++i) {
    const LayerConfig& lc = cfg_.layers[i];
    Layer l;
    l.first_tensor = spec_.tensors.size();
    l.mixer = load_mixer(ws, be, cfg_, lc);
    l.mixer->declare_state(int(i), spec_.tensors);
    l.ffn = load_ffn(ws, be, cfg_, lc);
    l.in_norm = be.param(ws.take_f32(lc.prefix + lc.input_norm, Hd));
    if (l.ffn) l.post_norm = be.param(ws.take_f32(lc.prefix + lc.post_norm, Hd));
    layers_.push_back(std::move(l));
    info_.layers.push_back(fmt::format("{}+{}", mixer_name(lc.mixer), ffn_name(lc.ffn)));
  }
  ws.check_all_taken(cfg_.ignorable_prefixes, cfg_.ignorable_suffixes);

  info_.architecture = cfg_.architecture;
  info_.vocab_size = V;
  info_.hidden_size = Hd;
  for (const auto& name : ws.files().names()) {
    bool ignorable = false;
    for (const auto& p : cfg_.ignorable_prefixes) ignorable |= name.rfind(p, 0) == 0;
    if (!ignorable) info_.n_params += shape_numel(ws.files().entry(name).shape);
  }
  info_.eos_token_id = cfg_.eos;
  info_.bos_token_id = cfg_.bos;
  dump_ = std::getenv("LINFER_DUMP");
}

void LoadedModel::validate_batch(const Batch& batch, size_t n_states, const float* logits, Logits mode) const {
  const int64_t n_seqs = batch.n_seqs(), T = int64_t(batch.tokens.size());
  LINFER_CHECK(n_seqs >= 1, "forward: the batch has no sequences (offsets must hold n_seqs + 1 entries)");
  LINFER_CHECK(int64_t(n_states) == n_seqs, "forward: {} sequences but {} states", n_seqs, n_states);
  LINFER_CHECK(batch.offsets.front() == 0 && batch.offsets.back() == T,
               "forward: offsets must start at 0 and end at the token count ({})", T);
  for (int64_t i = 0; i < n_seqs; ++i) {
    const int64_t n = batch.offsets[i + 1] - batch.offsets[i];
    LINFER_CHECK(n >= 1, "forward: sequence {} has {} tokens (at least one expected)", i, n);
  }
  for (int64_t i = 0; i < n_seqs; ++i) {  // offsets rise from 0 to T: every index below is in range
    for (int64_t t = batch.offsets[i]; t < batch.offsets[i + 1]; ++t) {
      const int32_t id = batch.tokens[t];
      LINFER_CHECK(id >= 0 && id < cfg_.vocab, "forward: token id {} (sequence {}, token {}) is outside the "
                   "vocabulary [0, {})", id, i, t - batch.offsets[i], cfg_.vocab);
    }
  }
  LINFER_CHECK(logits || mode == Logits::None, "forward: logits buffer is null");
}

void LoadedModel::validate(const Batch& batch, std::span<SequenceState* const> states, const float* logits,
                           Logits mode) const {
  validate_batch(batch, states.size(), logits, mode);
  const int64_t n_seqs = batch.n_seqs();
  for (int64_t i = 0; i < n_seqs; ++i) {
    LINFER_CHECK(states[i], "forward: state {} is null", i);
    const std::string why = spec_mismatch(spec_, *states[i]);
    LINFER_CHECK(why.empty(), "forward: state {} was not made for this model ({}): {}", i, fingerprint_, why);
  }
  // One state advanced twice in one call would see its own tokens as another sequence's.
  thread_local std::vector<const SequenceState*> seen;
  seen.assign(states.begin(), states.end());
  std::sort(seen.begin(), seen.end());
  LINFER_CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end(),
               "forward: one state is given for two sequences");
  for (int64_t i = 0; i < n_seqs; ++i) {
    const int64_t n = batch.offsets[i + 1] - batch.offsets[i];
    for (size_t j = 0; j < spec_.tensors.size(); ++j) {
      if (spec_.tensors[j].kind != StateKind::Growing) continue;
      try {
        states[i]->reserve_rows(j, n);
      } catch (const std::bad_alloc&) {
        fail("forward: out of memory growing state {}'s layer {} '{}' by {} rows (it holds {})", i,
             spec_.tensors[j].layer, spec_.tensors[j].name, n, states[i]->rows(j));
      } catch (const std::length_error&) {
        fail("forward: state {}'s layer {} '{}' cannot grow by {} rows (it holds {})", i, spec_.tensors[j].layer,
             spec_.tensors[j].name, n, states[i]->rows(j));
      }
    }
  }
}

void LoadedModel::forward_slots(const Batch& batch, StateSlots& pool, std::span<const int32_t> slots, float* logits,
                                Logits mode) const {
  if (be_->device() == Device::Cpu) return Model::forward_slots(batch, pool, slots, logits, mode);
  auto* dev = dynamic_cast<DeviceStateSlots*>(&pool);
  LINFER_CHECK(dev && &dev->backend() == be_.get(), "forward_slots: the slots were not made by this model");
  validate_batch(batch, slots.size(), logits, mode);
  thread_local std::vector<int32_t> seen;
  seen.assign(slots.begin(), slots.end());
  std::sort(seen.begin(), seen.end());
  LINFER_CHECK(seen.front() >= 0 && seen.back() < pool.n_slots(), "forward_slots: slot {} is outside the pool [0, {})",
               seen.front() < 0 ? seen.front() : seen.back(), pool.n_slots());
  LINFER_CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end(),
               "forward_slots: one slot is given for two sequences");
  std::lock_guard lock(device_mu_);
  run(batch, {.pool = dev, .ids = slots}, logits, mode, nullptr);
}

void LoadedModel::forward_staged(const Batch& batch, std::span<SequenceState* const> states, float* logits,
                                 Logits mode, const FunctionRef<void(int)>* on_layer) const {
  validate(batch, states, logits, mode);
  std::lock_guard lock(device_mu_);
  const int n = int(states.size());
  if (!staging_ || staging_->n_slots() < n) staging_ = be_->make_slots(spec_, n);
  auto* dev = dynamic_cast<DeviceStateSlots*>(staging_.get());
  thread_local std::vector<int32_t> ids;
  ids.resize(size_t(n));
  std::iota(ids.begin(), ids.end(), 0);
  for (int i = 0; i < n; ++i) staging_->load(i, *states[i]);
  if (!on_layer) {
    run(batch, {.pool = dev, .ids = ids}, logits, mode, nullptr);
    for (int i = 0; i < n; ++i) staging_->save(i, *states[i]);  // only now: a failed call changes no state
    return;
  }
  // Layer by layer: the host states' tensors change as their layers finish, their token counts at the end.
  auto copy_back = [&](int l) {
    const size_t first = layers_[size_t(l)].first_tensor;
    const size_t last = size_t(l) + 1 < layers_.size() ? layers_[size_t(l) + 1].first_tensor : spec_.tensors.size();
    for (int i = 0; i < n; ++i) dev->save_tensors(i, first, last, *states[i]);
    (*on_layer)(l);
  };
  const FunctionRef<void(int)> each_layer(copy_back);
  run(batch, {.pool = dev, .ids = ids}, logits, mode, &each_layer);
  for (int i = 0; i < n; ++i) states[i]->set_n_tokens(staging_->n_tokens(i));
}

void LoadedModel::run(const Batch& batch, const CallStates& states, float* logits, Logits mode,
                      const FunctionRef<void(int)>* on_layer) const {
  // Nothing below fails on input the checks before it accept, except running out of memory (scratch
  // buffers): the Growing tensors' room for this call's rows is reserved before any state changes.
  const int64_t n_seqs = batch.n_seqs();
  bool decode = true;
  for (int64_t i = 0; i < n_seqs; ++i) decode &= batch.offsets[i + 1] - batch.offsets[i] == 1;
  const int64_t T = int64_t(batch.tokens.size()), Hd = cfg_.hidden;
  Backend& be = *be_;

  Tmp tmp(be);
  thread_local std::vector<int64_t> positions;
  positions.resize(size_t(T));
  for (int64_t i = 0; i < n_seqs; ++i)
    for (int64_t t = batch.offsets[i]; t < batch.offsets[i + 1]; ++t)
      positions[t] = states.n_tokens(i) + (t - batch.offsets[i]);

  const Mat x = tmp.mat(T, Hd), h = tmp.mat(T, Hd), y = tmp.mat(T, Hd);
  {
    ProfileScope p("embed");
    be.embedding(embed_, batch.tokens, x);
  }
  auto dump = [&](const std::string& name, const Mat& m) {
    if (!dump_) return;
    std::vector<float> host(size_t(m.size()));
    be.download(m, host.data());
    write_npy(fmt::format("{}/{}.npy", dump_, name), host.data(), {m.rows, m.cols});
  };
  dump("hidden_0", x);

  Seqs seqs{.offsets = batch.offsets, .positions = positions, .decode = decode};
  SlotBinding binding;
  if (states.pool) {
    binding = states.pool->bind(states.ids, seqs);
    seqs.device_offsets = binding.call_offsets, seqs.device_positions = binding.call_positions;
  }
  MixerCall call{.be = &be, .T = T, .seqs = seqs, .states = states.host, .slots = states.pool ? &binding : nullptr};
  // The logits' rows. The CPU backend writes the caller's buffer directly; a device writes scratch (taken
  // before the layers, so that a recorded step finds it where it was) and copies it back.
  const int64_t rows = mode == Logits::Last ? n_seqs : T;
  const Mat out = mode == Logits::None            ? Mat()
                  : be.device() == Device::Cpu    ? Mat(logits, rows, cfg_.vocab)
                                                  : tmp.mat(rows, cfg_.vocab);

  // The pass in parts: 2l = layer l's mixer (and the residual add, and the norm after it), 2l + 1 = its FFN
  // (and the same), 2L = the lm head.
  const size_t n_parts = 2 * layers_.size() + 1;
  auto run_part = [&](size_t part) {
    const size_t l = part / 2;
    if (part == n_parts - 1) {
      if (mode == Logits::None) return;
      ProfileScope p("lm head");
      if (mode == Logits::Last) {
        for (int64_t i = 0; i < n_seqs; ++i) be.copy(x.rows_of(batch.offsets[i + 1] - 1, 1), h.rows_of(i, 1));
        norm(final_norm_, h.rows_of(0, rows), h.rows_of(0, rows));
      } else {
        norm(final_norm_, x, h);
      }
      dump("final_norm", h.rows_of(0, rows));
      return be.matmul(h.rows_of(0, rows), lm_head_, {}, out);
    }
    const Layer& layer = layers_[l];
    const LayerConfig& lc = cfg_.layers[l];
    // x += y, then h = the next norm of x: the FFN's, else the next layer's input norm (none after the last
    // layer: the lm head norms only the rows it needs). One kernel on CUDA.
    const Param* next_in_norm = l + 1 < layers_.size() ? &layers_[l + 1].in_norm : nullptr;
    auto residual = [&](const Param* next_norm) {
      ProfileScope p("norms + residual");
      if (next_norm) add_norm(*next_norm, x, y, h);
      else be.add(x, y);
    };
    if (part % 2 == 0) {
      if (l == 0) {
        ProfileScope p("norms + residual");
        norm(layer.in_norm, x, h);
      }
      call.first_tensor = layer.first_tensor;
      {
        ProfileScope p("mixer", mixer_name(lc.mixer));
        layer.mixer->forward(h, y, call);
      }
      if (on_layer) (*on_layer)(int(l));  // the ffn reads no state: layer l's state is final here
      residual(layer.ffn ? &layer.post_norm : next_in_norm);
    } else if (layer.ffn) {
      {
        ProfileScope p("ffn", ffn_name(lc.ffn));
        layer.ffn->forward(be, h, y);
      }
      residual(next_in_norm);
    }
    if (part % 2 == 1 || !layer.ffn) dump(fmt::format("hidden_{}", l + 1), x);
  };
  // A decode step on a device pool: each run of parts whose ops depend only on the batch size, the slot
  // binding and the class of the longest cache (cache_length_class) is recorded once and replayed from then
  // on (a CUDA graph: one launch instead of hundreds).
  const bool replay = decode && states.pool && !on_layer && !dump_ && !profile_enabled();
  const bool caches = std::ranges::any_of(spec_.tensors, [](const auto& t) { return t.kind == StateKind::Growing; });
  int64_t length_class = 0;
  if (replay && caches)
    for (int64_t i = 0; i < n_seqs; ++i)
      length_class = std::max(length_class, cache_length_class(states.n_tokens(i) + 1));
  auto replayable = [&](size_t part) {
    if (part == n_parts - 1) return true;
    const Layer& layer = layers_[part / 2];
    return part % 2 == 0 ? layer.mixer->step_replayable() : !layer.ffn || layer.ffn->step_replayable(n_seqs);
  };
  for (size_t part = 0; part < n_parts;) {
    if (!replay || !replayable(part)) {
      run_part(part++);
      continue;
    }
    size_t end = part;
    while (end < n_parts && replayable(end)) ++end;
    const uint64_t what[] = {part, end, uint64_t(n_seqs), uint64_t(mode), reinterpret_cast<uintptr_t>(states.pool),
                             uint64_t(length_class)};
    const uint64_t key = XXH3_64bits(what, sizeof what);
    be.run_recorded(key, [&] {
      for (size_t q = part; q < end; ++q) run_part(q);
    });
    part = end;
  }
  for (int64_t i = 0; i < n_seqs; ++i) states.advance(i, batch.offsets[i + 1] - batch.offsets[i]);
  if (mode != Logits::None) be.download(out, logits);
}

}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& dir, Device device) {
  return std::make_shared<LoadedModel>(dir, device);
}

std::unique_ptr<StateSlots> Model::make_slots(int n) const { return std::make_unique<HostStateSlots>(state_spec(), n); }

void Model::forward_slots(const Batch& batch, StateSlots& pool, std::span<const int32_t> slots, float* logits,
                          Logits mode) const {
  auto* host = dynamic_cast<HostStateSlots*>(&pool);
  LINFER_CHECK(host, "forward_slots: the slots were not made by this model's make_slots()");
  thread_local std::vector<SequenceState*> states;
  states.clear();
  for (int32_t s : slots) states.push_back(&host->at(s));
  forward(batch, states, logits, mode);
}

void Model::forward_layerwise(const Batch& batch, std::span<SequenceState* const> states, float* logits, Logits mode,
                              FunctionRef<void(int)> on_layer) const {
  forward(batch, states, logits, mode);
  for (size_t l = 0; l < info().layers.size(); ++l) on_layer(int(l));
}

}  // namespace linfer
