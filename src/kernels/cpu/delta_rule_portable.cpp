// The delta-rule kernels built without -m flags: the fallback for any CPU and any head dims.
#include "kernels/cpu/delta_rule_kernels.h"

namespace linfer::kernels::delta_detail {

const Kernels& portable_kernels(DeltaDecay decay, bool vector8) {
  return (vector8 ? kernel_tables<8>() : kernel_tables<1>())[int(decay)];
}

}  // namespace linfer::kernels::delta_detail
