// Unicode normalization before pre-tokenization, as HF tokenizer.json's "normalizer" states it
// (NFC, NFKC, NFD, NFKD, or a Sequence of them), computed by ICU (libicu), not by our own tables.
//
// Only well-formed UTF-8 is normalized: pv's tokenizer also takes arbitrary bytes, so each
// maximal run of valid UTF-8 is normalized on its own and invalid bytes pass through unchanged
// (HF only ever sees valid strings, so it has no rule to follow here).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pv::model {

enum class NormalizationForm { kNFC, kNFKC, kNFD, kNFKD };

// "NFC" -> kNFC, ...; false for any other name.
bool parse_normalization_form(std::string_view name, NormalizationForm& out);
const char* normalization_form_name(NormalizationForm f);

class Normalizer {
 public:
  Normalizer() = default;  // the identity
  explicit Normalizer(std::vector<NormalizationForm> forms);

  bool identity() const { return forms_.empty(); }
  const std::vector<NormalizationForm>& forms() const { return forms_; }

  // Applies the forms in order. Returns false, leaving `out` untouched, when `text` is
  // already normalized (the common case, checked without copying).
  bool apply(std::string_view text, std::string& out) const;

 private:
  std::vector<NormalizationForm> forms_;
  std::vector<const void*> icu_;  // const icu::Normalizer2*, one per form
};

}  // namespace pv::model
