#include "model/tokenizer/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <string>
#include <unordered_map>

#include "model/tokenizer/normalize.h"
#include "model/tokenizer/pretokenize.h"
#include "mutants/mutant.h"

namespace pv::model {
namespace {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct ByteMap {
  std::array<char32_t, 256> to_unicode{};
  std::array<int16_t, 324> from_unicode{};  // image is within U+0000..U+0143
  ByteMap() {
    from_unicode.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_unicode[b] = printable ? static_cast<char32_t>(b) : next++;
      from_unicode[to_unicode[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct Merge {
  int32_t rank;
  int32_t result;
};

// Entries of the per-word merge queue: lowest rank first, then leftmost (as HF's BPE).
struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t result;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

constexpr size_t kWordCacheLimit = 1 << 16;

}  // namespace

char32_t byte_to_unicode(uint8_t b) { return byte_map().to_unicode[b]; }

int unicode_to_byte(char32_t c) {
  const auto& m = byte_map().from_unicode;
  return c < m.size() ? m[c] : -1;
}

std::string bytes_to_mapped(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) append_utf8(out, byte_to_unicode(b));
  return out;
}

struct Tokenizer::Impl {
  std::vector<std::string> tokens;
  std::vector<TokenType> types;
  std::vector<std::string> decoded;  // bytes each id decodes to
  TokenMap token_to_id;
  std::unordered_map<uint64_t, Merge> merges;
  TokenMap merge_ranks;  // "a b" -> rank, for merge_rank()
  std::array<int32_t, 256> byte_token{};
  // Control / user-defined tokens by first byte, longest first (leftmost-longest matching).
  std::array<std::vector<int32_t>, 256> specials_by_byte;
  bool has_specials = false;
  int32_t bos = -1, eos = -1;
  bool add_bos = false;
  bool use_cache = true;
  PreTokenizerKind pre = PreTokenizerKind::kQwen2;
  Normalizer normalizer;
  bool ignore_merges = false;

  mutable std::mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache;

  void bpe(std::string_view bytes, std::vector<int32_t>& out) const;
};

Tokenizer::Tokenizer(const TokenizerData& d) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  if (!d.present) {
    throw TokenizerError(
        "the model file has no tokenizer (no tokenizer.ggml.* keys); give token "
        "ids directly");
  }
  if (d.model != "gpt2") {
    throw TokenizerError(fmt::format(
        "tokenizer.ggml.model is '{}': only byte-level BPE ('gpt2') is supported", d.model));
  }
  if (d.pre == "qwen2") {
    m.pre = PreTokenizerKind::kQwen2;
  } else if (d.pre == "llama-bpe") {
    m.pre = PreTokenizerKind::kLlama3;
  } else {
    throw TokenizerError(fmt::format(
        "tokenizer.ggml.pre is '{}': pv implements the pre-tokenizers 'qwen2' and 'llama-bpe' "
        "(Llama 3); give token ids directly",
        d.pre));
  }
  // What GGUF does not state follows the HF tokenizer.json each pre-tokenizer comes from:
  // Qwen2/2.5/3 normalize to NFC, Llama 3 normalizes nothing and sets ignore_merges.
  std::vector<NormalizationForm> forms;
  if (d.normalizers) {
    for (size_t k = 0; k < d.normalizers->size(); ++k) {
      NormalizationForm f;
      if (!parse_normalization_form((*d.normalizers)[k], f)) {
        throw TokenizerError(
            fmt::format("normalizer [{}] is '{}': pv implements NFC, NFKC, NFD and NFKD", k,
                        (*d.normalizers)[k]));
      }
      forms.push_back(f);
    }
  } else if (m.pre == PreTokenizerKind::kQwen2) {
    forms.push_back(NormalizationForm::kNFC);
  }
  m.normalizer = Normalizer(std::move(forms));
  m.ignore_merges = d.ignore_merges.value_or(m.pre == PreTokenizerKind::kLlama3);
  if (d.tokens.empty()) throw TokenizerError("tokenizer.ggml.tokens is empty");
  if (d.tokens.size() > static_cast<size_t>(INT32_MAX)) {
    throw TokenizerError("tokenizer.ggml.tokens has more than 2^31-1 entries");
  }
  if (!d.token_types.empty() && d.token_types.size() != d.tokens.size()) {
    throw TokenizerError(fmt::format("tokenizer.ggml.token_type has {} entries for {} tokens",
                                     d.token_types.size(), d.tokens.size()));
  }
  const auto n = static_cast<int32_t>(d.tokens.size());
  auto check_id = [&](int32_t id, const char* key) {
    if (id < -1 || id >= n) {
      throw TokenizerError(fmt::format("{} = {} is outside the vocabulary of {}", key, id, n));
    }
  };
  check_id(d.bos, "tokenizer.ggml.bos_token_id");
  check_id(d.eos, "tokenizer.ggml.eos_token_id");
  m.bos = d.bos;
  m.eos = d.eos;
  m.add_bos = d.add_bos;
  if (m.add_bos && m.bos < 0) {
    throw TokenizerError("tokenizer.ggml.add_bos_token is set but there is no bos_token_id");
  }

  m.tokens = d.tokens;
  m.types.resize(n, TokenType::kNormal);
  m.decoded.resize(n);
  m.token_to_id.reserve(n);
  for (int32_t id = 0; id < n; ++id) {
    if (!d.token_types.empty()) {
      const int32_t t = d.token_types[id];
      if (t < 0 || t > 6) {
        throw TokenizerError(
            fmt::format("tokenizer.ggml.token_type[{}] = {} is not a GGUF token "
                        "type (0..6)",
                        id, t));
      }
      m.types[id] = static_cast<TokenType>(t);
    }
    const std::string& s = m.tokens[id];
    m.token_to_id.try_emplace(s, id);  // a duplicate string keeps its first id
    const bool special =
        m.types[id] == TokenType::kControl || m.types[id] == TokenType::kUserDefined;
    if (special) {
      m.decoded[id] = s;
      if (!s.empty()) {
        m.specials_by_byte[static_cast<unsigned char>(s[0])].push_back(id);
        m.has_specials = true;
      }
      continue;
    }
    // Undo the byte-level mapping; a character outside the mapping's image (not produced by
    // a byte-level vocabulary) decodes to its own UTF-8.
    std::vector<DecodedChar> chars;
    decode_utf8(s, chars);
    for (size_t k = 0; k < chars.size(); ++k) {
      const int b = chars[k].cp == 0xFFFFFFFF ? -1 : unicode_to_byte(chars[k].cp);
      if (b >= 0) {
        m.decoded[id] += static_cast<char>(b);
      } else {
        const size_t end = k + 1 < chars.size() ? chars[k + 1].offset : s.size();
        m.decoded[id].append(s, chars[k].offset, end - chars[k].offset);
      }
    }
  }
  for (auto& v : m.specials_by_byte) {
    std::stable_sort(v.begin(), v.end(),
                     [&](int32_t a, int32_t b) { return m.tokens[a].size() > m.tokens[b].size(); });
  }
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    append_utf8(ch, byte_to_unicode(static_cast<uint8_t>(b)));
    auto it = m.token_to_id.find(ch);
    if (it == m.token_to_id.end()) {
      throw TokenizerError(fmt::format(
          "the vocabulary has no token for byte 0x{:02X} (byte-level character '{}')", b, ch));
    }
    m.byte_token[b] = it->second;
  }

  m.merges.reserve(d.merges.size());
  m.merge_ranks.reserve(d.merges.size());
  for (size_t r = 0; r < d.merges.size(); ++r) {
    const std::string& line = d.merges[r];
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() ||
        line.find(' ', sp + 1) != std::string::npos) {
      throw TokenizerError(fmt::format(
          "tokenizer.ggml.merges[{}] = '{}' is not two tokens separated by one space", r, line));
    }
    const std::string_view left(line.data(), sp), right(line.data() + sp + 1, line.size() - sp - 1);
    auto find = [&](std::string_view tok, const char* what) {
      auto it = m.token_to_id.find(tok);
      if (it == m.token_to_id.end()) {
        throw TokenizerError(
            fmt::format("tokenizer.ggml.merges[{}] = '{}': {} '{}' is not in "
                        "the vocabulary",
                        r, line, what, tok));
      }
      return it->second;
    };
    const int32_t a = find(left, "left token"), b = find(right, "right token");
    const int32_t c = find(std::string(left) + std::string(right), "merged token");
    // The first occurrence of a pair wins, as a rank table built in order would have it.
    m.merges.try_emplace(pair_key(a, b), Merge{static_cast<int32_t>(r), c});
    m.merge_ranks.try_emplace(line, static_cast<int32_t>(r));
  }
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

void Tokenizer::Impl::bpe(std::string_view bytes, std::vector<int32_t>& out) const {
  if (ignore_merges) {
    // HF's BPE with ignore_merges: a pre-token that is a whole vocabulary entry is that token,
    // whatever the merges would have made of it.
    auto it = token_to_id.find(bytes_to_mapped(bytes));
    if (it != token_to_id.end()) {
      out.push_back(it->second);
      return;
    }
  }
  // Symbols form a doubly linked list over the word's bytes; merging j into i unlinks j.
  struct Sym {
    int32_t id, prev, next;
  };
  const auto n = static_cast<int32_t>(bytes.size());
  // Scratch reused across words on this thread: encoding allocates nothing per word.
  thread_local std::vector<Sym> sym;
  thread_local std::vector<Candidate> heap;
  sym.resize(n);
  heap.clear();
  for (int32_t k = 0; k < n; ++k) {
    sym[k] = {byte_token[static_cast<unsigned char>(bytes[k])], k - 1, k + 1 < n ? k + 1 : -1};
  }
  const auto cmp = std::greater<>{};  // min-heap on (rank, pos)
  const bool rank_desc = mutant::planted(mutant::Bug::TokenizerMergeOrder);
  auto push = [&](int32_t pos) {
    if (pos < 0 || sym[pos].next < 0) return;
    auto it = merges.find(pair_key(sym[pos].id, sym[sym[pos].next].id));
    if (it == merges.end()) return;
    heap.push_back({rank_desc ? -it->second.rank : it->second.rank, pos, it->second.result});
    std::push_heap(heap.begin(), heap.end(), cmp);
  };
  for (int32_t k = 0; k + 1 < n; ++k) push(k);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), cmp);
    const Candidate top = heap.back();
    heap.pop_back();
    Sym& s = sym[top.pos];
    if (s.id < 0 || s.next < 0) continue;  // merged away, or now the last symbol
    // Stale entry: the pair at pos changed since it was queued.
    auto it = merges.find(pair_key(s.id, sym[s.next].id));
    if (it == merges.end() || it->second.result != top.result) continue;
    Sym& right = sym[s.next];
    s.id = top.result;
    right.id = -1;
    s.next = right.next;
    if (s.next >= 0) sym[s.next].prev = top.pos;
    push(s.prev);
    push(top.pos);
  }
  for (int32_t k = 0; k >= 0; k = sym[k].next) out.push_back(sym[k].id);
}

void Tokenizer::encode_word(std::string_view bytes, std::vector<int32_t>& out) const {
  const Impl& m = *impl_;
  if (bytes.empty()) return;
  if (bytes.size() == 1) {
    out.push_back(m.byte_token[static_cast<unsigned char>(bytes[0])]);
    return;
  }
  if (!m.use_cache) {
    m.bpe(bytes, out);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(m.cache_mu);
    auto it = m.cache.find(bytes);
    if (it != m.cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  m.bpe(bytes, out);
  std::lock_guard<std::mutex> lock(m.cache_mu);
  if (m.cache.size() >= kWordCacheLimit) m.cache.clear();  // bounded memory on odd inputs
  m.cache.try_emplace(std::string(bytes), out.begin() + static_cast<std::ptrdiff_t>(start),
                      out.end());
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  const Impl& m = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && m.add_bos) out.push_back(m.bos);
  std::vector<DecodedChar> chars;
  std::vector<Piece> pieces;
  std::string normalized;
  // Special tokens are matched in the raw text; the text between them is normalized (HF's
  // added tokens with normalized = false, which is how Qwen's and Llama 3's are stored).
  auto encode_segment = [&](std::string_view seg) {
    if (seg.empty()) return;
    if (m.normalizer.apply(seg, normalized)) seg = normalized;
    pieces.clear();
    pretokenize(m.pre, seg, chars, pieces);
    for (const Piece& p : pieces) encode_word(seg.substr(p.begin, p.end - p.begin), out);
  };
  if (!parse_special || !m.has_specials) {
    encode_segment(text);
    return out;
  }
  size_t seg_start = 0;
  for (size_t i = 0; i < text.size();) {
    int32_t hit = -1;
    for (int32_t id : m.specials_by_byte[static_cast<unsigned char>(text[i])]) {
      if (text.substr(i).starts_with(m.tokens[id])) {
        hit = id;  // longest first
        break;
      }
    }
    if (hit < 0) {
      ++i;
      continue;
    }
    encode_segment(text.substr(seg_start, i - seg_start));
    out.push_back(hit);
    i += m.tokens[hit].size();
    seg_start = i;
  }
  encode_segment(text.substr(seg_start));
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  const Impl& m = *impl_;
  std::string out;
  for (size_t k = 0; k < ids.size(); ++k) {
    const int32_t id = ids[k];
    if (id < 0 || static_cast<size_t>(id) >= m.tokens.size()) {
      throw TokenizerError(
          fmt::format("token id {} at position {} is outside the vocabulary "
                      "of {}",
                      id, k, m.tokens.size()));
    }
    out += m.decoded[id];
  }
  return out;
}

void Tokenizer::set_word_cache_enabled(bool enabled) {
  std::lock_guard<std::mutex> lock(impl_->cache_mu);
  impl_->use_cache = enabled;
  impl_->cache.clear();
}

size_t Tokenizer::vocab_size() const { return impl_->tokens.size(); }
PreTokenizerKind Tokenizer::pretokenizer() const { return impl_->pre; }
const Normalizer& Tokenizer::normalizer() const { return impl_->normalizer; }
bool Tokenizer::ignore_merges() const { return impl_->ignore_merges; }
size_t Tokenizer::merge_count() const { return impl_->merge_ranks.size(); }
int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }

const std::string& Tokenizer::token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->tokens.size()) {
    throw TokenizerError(
        fmt::format("token id {} is outside the vocabulary of {}", id, impl_->tokens.size()));
  }
  return impl_->tokens[id];
}

TokenType Tokenizer::token_type(int32_t id) const {
  token(id);  // range check
  return impl_->types[id];
}

int32_t Tokenizer::token_id(std::string_view tok) const {
  auto it = impl_->token_to_id.find(tok);
  return it == impl_->token_to_id.end() ? -1 : it->second;
}

int32_t Tokenizer::merge_rank(std::string_view left, std::string_view right) const {
  std::string key;
  key.reserve(left.size() + right.size() + 1);
  key.append(left).append(" ").append(right);
  auto it = impl_->merge_ranks.find(key);
  return it == impl_->merge_ranks.end() ? -1 : it->second;
}

}  // namespace pv::model
