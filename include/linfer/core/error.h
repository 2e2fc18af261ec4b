#pragma once
// Errors a user can act on. Everything that reads user input (checkpoints, states, requests, flags)
// reports problems by throwing linfer::Error with a message that names the file / tensor / field and
// says what was expected; nothing aborts on bad input.
//
//   LINFER_CHECK(shape[0] == n, "tensor {} in {}: expected {} rows, found {}", name, file, n, shape[0]);
//   throw linfer::Error(fmt::format("unknown model_type '{}'", type));

#include <fmt/format.h>
#include <stdexcept>
#include <string>

namespace linfer {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace linfer

#define LINFER_CHECK(cond, ...)        \
  do {                                 \
    if (!(cond)) ::linfer::fail(__VA_ARGS__); \
  } while (0)
