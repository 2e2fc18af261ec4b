#pragma once
// Where a model runs: its weights, scratch and sequence-state slots live on one device.
//
//   auto model = linfer::Model::load(dir, linfer::parse_device("cuda"));   // throws if not built / no GPU

#include <cstdint>
#include <string_view>

namespace linfer {

enum class Device : uint8_t {
  Cpu,   // today's kernels (src/kernels/cpu)
  Cuda,  // src/kernels/cuda + cuBLAS; needs a build with -DLINFER_CUDA=ON and an NVIDIA GPU
};

const char* device_name(Device d);  // "cpu", "cuda"
// "cpu" / "cuda"; throws linfer::Error naming the accepted values otherwise.
Device parse_device(std::string_view name);

}  // namespace linfer
