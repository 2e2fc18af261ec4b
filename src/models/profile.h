#pragma once
// Wall time per part of the forward pass, for `linfer bench --profile` (and LINFER_PROFILE=1 in any
// command): each layer's mixer and FFN are charged to their kind ("mixer kda", "ffn moe"), the rest
// to "embed", "norms + residual" and "lm head". Off by default: a disabled profile costs one branch
// per part. The totals are process-wide and not synchronised: profile one forward at a time.
//
//   profile_enable(true);
//   model->forward(...);
//   for (auto& [part, e] : profile_totals()) fmt::print("{} {:.3f} s\n", part, e.seconds);

#include <chrono>
#include <map>
#include <string>

namespace linfer {

struct ProfileEntry {
  double seconds = 0;
  int64_t calls = 0;
};

void profile_enable(bool on);
bool profile_enabled();
void profile_reset();
const std::map<std::string, ProfileEntry>& profile_totals();
// Adds to the part named "group" or "group kind" (kind may be null).
void profile_add(const char* group, const char* kind, double seconds);

// Charges the time from construction to destruction to the part when profiling is on.
class ProfileScope {
 public:
  explicit ProfileScope(const char* group, const char* kind = nullptr)
      : group_(profile_enabled() ? group : nullptr), kind_(kind) {
    if (group_) t0_ = std::chrono::steady_clock::now();
  }
  ~ProfileScope() {
    if (group_)
      profile_add(group_, kind_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  const char* group_;
  const char* kind_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace linfer
