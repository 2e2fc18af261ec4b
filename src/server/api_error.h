#pragma once
// Errors the API answers with: an HTTP status and an OpenAI-style body
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "max_tokens", "code": 400}}
// Handlers throw ApiError; the router turns it (and any linfer::Error from below, as a 400) into the
// response.
//
//   throw ApiError(400, "max_tokens must be at least 1", "max_tokens");

#include <string>

#include "linfer/core/error.h"
#include "server/http.h"

namespace linfer::server {

class ApiError : public Error {
 public:
  ApiError(int status, const std::string& message, std::string param = {}, HttpHeaders headers = {})
      : Error(message), status_(status), param_(std::move(param)), headers_(std::move(headers)) {}
  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const HttpHeaders& headers() const { return headers_; }

 private:
  int status_;
  std::string param_;
  HttpHeaders headers_;  // e.g. Retry-After on 429
};

// "invalid_request_error", "authentication_error", "not_found_error", "rate_limit_error",
// "server_error", "unavailable_error".
const char* error_type(int status);
std::string error_body(int status, const std::string& message, const std::string& param = {});

}  // namespace linfer::server
