#pragma once
// The delta-rule family (DeltaNet, GDN, KDA), float64 reference: the specification the CPU kernels in
// kernels/cpu/delta_rule.h are tested against. Token-by-token loops written to be read, not to be
// fast. Inputs are float32 as the fast kernels get them; states and outputs are double.
//
//   reference::delta_rule(shape, in, offsets, states, o);   // states[i]: double [HV, V, K]

#include <cstdint>
#include <span>

#include "kernels/cpu/delta_rule.h"

namespace linfer::kernels::reference {

// Sequence i owns tokens [offsets[i], offsets[i+1]) and updates states[i] ([HV, V, K], v-major:
// state[hv][v][k] = S[k][v]) in place. o: [T, HV, V].
void delta_rule(const DeltaRuleShape& shape, const DeltaRuleInputs& in, std::span<const int64_t> offsets,
                std::span<double* const> states, double* o);

}  // namespace linfer::kernels::reference
