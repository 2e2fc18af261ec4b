#include "models/profile.h"

#include <cstdlib>

namespace linfer {

namespace {

bool& enabled() {
  static bool on = [] {
    const char* env = std::getenv("LINFER_PROFILE");
    return env && *env && *env != '0';
  }();
  return on;
}

std::map<std::string, ProfileEntry>& totals() {
  static std::map<std::string, ProfileEntry> t;
  return t;
}

}  // namespace

void profile_enable(bool on) { enabled() = on; }
bool profile_enabled() { return enabled(); }
void profile_reset() { totals().clear(); }
const std::map<std::string, ProfileEntry>& profile_totals() { return totals(); }

void profile_add(const char* group, const char* kind, double seconds) {
  auto& e = totals()[kind ? std::string(group) + " " + kind : std::string(group)];
  e.seconds += seconds;
  ++e.calls;
}

}  // namespace linfer
