#include "tokenizer/normalizer.h"

#include <cstdint>

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>

#include "linfer/core/error.h"

namespace linfer::tok {

std::string normalize(Normalization form, std::string_view text) {
  if (form == Normalization::kNone) return std::string(text);
  LINFER_CHECK(text.size() < INT32_MAX, "NFC normalization: a text of {} bytes is over ICU's 2 GiB limit", text.size());
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) fail("NFC normalizer unavailable: {}", u_errorName(status));
  const icu::StringPiece input(text.data(), static_cast<int32_t>(text.size()));
  if (nfc->isNormalizedUTF8(input, status) && U_SUCCESS(status)) return std::string(text);
  std::string out;
  icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(text.size()));
  status = U_ZERO_ERROR;
  nfc->normalizeUTF8(0, input, sink, nullptr, status);
  if (U_FAILURE(status)) fail("NFC normalization failed: {}", u_errorName(status));
  return out;
}

}  // namespace linfer::tok
