#include "model/tokenizer/normalize.h"

#include <fmt/format.h>
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#include <unicode/utf8.h>

#include <stdexcept>

namespace pv::model {
namespace {

const icu::Normalizer2* instance(NormalizationForm f) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (f) {
    case NormalizationForm::kNFC:
      n = icu::Normalizer2::getNFCInstance(status);
      break;
    case NormalizationForm::kNFKC:
      n = icu::Normalizer2::getNFKCInstance(status);
      break;
    case NormalizationForm::kNFD:
      n = icu::Normalizer2::getNFDInstance(status);
      break;
    case NormalizationForm::kNFKD:
      n = icu::Normalizer2::getNFKDInstance(status);
      break;
  }
  if (U_FAILURE(status) || n == nullptr) {
    throw std::runtime_error(fmt::format("ICU: cannot load the {} normalizer: {}",
                                         normalization_form_name(f), u_errorName(status)));
  }
  return n;
}

// Length of the well-formed UTF-8 prefix of s (ICU's own decoder decides what is well formed).
size_t valid_prefix(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const auto n = static_cast<int32_t>(s.size());
  int32_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const int32_t start = i;
    UChar32 c;
    U8_NEXT(p, i, n, c);
    if (c < 0) return static_cast<size_t>(start);
  }
  return s.size();
}

// Normalizes one well-formed UTF-8 run; false when it already was normalized.
bool normalize_run(const icu::Normalizer2& n, std::string_view run, std::string& out) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::StringPiece sp(run.data(), static_cast<int32_t>(run.size()));
  if (n.isNormalizedUTF8(sp, status) && U_SUCCESS(status)) return false;
  status = U_ZERO_ERROR;
  std::string res;
  icu::StringByteSink<std::string> sink(&res, static_cast<int32_t>(run.size()));
  n.normalizeUTF8(0, sp, sink, nullptr, status);
  if (U_FAILURE(status)) {
    throw std::runtime_error(fmt::format("ICU normalization failed: {}", u_errorName(status)));
  }
  out = std::move(res);
  return true;
}

bool apply_one(const icu::Normalizer2& n, std::string_view text, std::string& out) {
  const size_t first_bad = valid_prefix(text);
  if (first_bad == text.size()) return normalize_run(n, text, out);
  // Mixed valid / invalid bytes: normalize each valid run, copy invalid bytes as they are.
  std::string res;
  bool changed = false;
  size_t i = 0;
  while (i < text.size()) {
    const size_t len = valid_prefix(text.substr(i));
    if (len > 0) {
      std::string norm;
      if (normalize_run(n, text.substr(i, len), norm)) {
        res += norm;
        changed = true;
      } else {
        res.append(text.substr(i, len));
      }
      i += len;
    }
    if (i < text.size()) {
      // One invalid byte (the decoder's unit of error), then look for valid text again.
      res += text[i];
      ++i;
    }
  }
  if (changed) out = std::move(res);
  return changed;
}

}  // namespace

bool parse_normalization_form(std::string_view name, NormalizationForm& out) {
  if (name == "NFC") {
    out = NormalizationForm::kNFC;
  } else if (name == "NFKC") {
    out = NormalizationForm::kNFKC;
  } else if (name == "NFD") {
    out = NormalizationForm::kNFD;
  } else if (name == "NFKD") {
    out = NormalizationForm::kNFKD;
  } else {
    return false;
  }
  return true;
}

const char* normalization_form_name(NormalizationForm f) {
  switch (f) {
    case NormalizationForm::kNFC:
      return "NFC";
    case NormalizationForm::kNFKC:
      return "NFKC";
    case NormalizationForm::kNFD:
      return "NFD";
    case NormalizationForm::kNFKD:
      return "NFKD";
  }
  return "?";
}

Normalizer::Normalizer(std::vector<NormalizationForm> forms) : forms_(std::move(forms)) {
  for (NormalizationForm f : forms_) icu_.push_back(instance(f));
}

bool Normalizer::apply(std::string_view text, std::string& out) const {
  bool changed = false;
  std::string cur;
  for (const void* p : icu_) {
    const auto& n = *static_cast<const icu::Normalizer2*>(p);
    std::string next;
    if (apply_one(n, changed ? std::string_view(cur) : text, next)) {
      cur = std::move(next);
      changed = true;
    }
  }
  if (changed) out = std::move(cur);
  return changed;
}

}  // namespace pv::model
