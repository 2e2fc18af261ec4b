#pragma once
// Checkpoint tensor names -> mixer / FFN objects. Each family accepts both layouts it is found in:
// the names save_pretrained / the published checkpoints write, and transformers' in-memory packed
// names (state_dict()). Errors name the tensor and the file.

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "ffn/ffn.h"
#include "linfer/state.h"
#include "mixers/mixer.h"
#include "models/model_config.h"
#include "models/weights.h"

namespace linfer {

// Throws naming the first layer (or the model's own ops) whose ops `be` lacks for `weights` dtype: called
// before any weight is put on the backend.
void check_backend_runs(const Backend& be, const ModelConfig& m, DType weights);

// A layer's mixer / FFN with its weights on `be`.
std::unique_ptr<Mixer> load_mixer(WeightStore& ws, Backend& be, const ModelConfig& m, const LayerConfig& l);
std::unique_ptr<Ffn> load_ffn(WeightStore& ws, Backend& be, const ModelConfig& m, const LayerConfig& l);

// The state a layer declares, from its dims alone (no weights needed: `inspect --config-only`).
void declare_layer_state(const LayerConfig& l, int layer, std::vector<StateTensorSpec>& out);

// Parameters of the model described by `m` (for `inspect --config-only`).
int64_t count_params(const ModelConfig& m);

}  // namespace linfer
