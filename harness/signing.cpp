#include "harness/signing.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "harness/gtest_listing.h"
#include "harness/input_limits.h"

namespace pv::harness {
namespace {

namespace fs = std::filesystem;

constexpr const char* kKeyHeader = "pv-ed25519-private-key-v1";
constexpr uint64_t kMaxKeyFileBytes = 64 << 10;

void init_sodium() {
  static const int rc = sodium_init();
  if (rc < 0) throw std::runtime_error("libsodium failed to initialise");
}

// Decodes standard base64 (padding optional) into exactly `n` bytes.
bool base64_decode(const std::string& text, uint8_t* out, size_t n) {
  init_sodium();
  size_t len = 0;
  const char* end = nullptr;
  const int variant = text.find('=') == std::string::npos
                          ? sodium_base64_VARIANT_ORIGINAL_NO_PADDING
                          : sodium_base64_VARIANT_ORIGINAL;
  if (sodium_base642bin(out, n, text.data(), text.size(), nullptr, &len, &end, variant) != 0) {
    return false;
  }
  return len == n && end == text.data() + text.size();
}

std::vector<std::string> split_ws(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

// Column (1-based) of the i-th whitespace-separated word of `line`.
int word_col(const std::string& line, size_t index) {
  size_t i = 0, word = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i >= line.size()) break;
    if (word == index) return static_cast<int>(i) + 1;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    ++word;
  }
  return static_cast<int>(line.size()) + 1;
}

bool safe_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (unsigned char c : s) {
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return s != "." && s != "..";
}

std::string str_at(const nlohmann::json& j, const char* a, const char* b) {
  if (!j.is_object()) return {};
  const auto ia = j.find(a);
  if (ia == j.end() || !ia->is_object()) return {};
  const auto ib = ia->find(b);
  return ib != ia->end() && ib->is_string() ? ib->get<std::string>() : std::string();
}

// Every key the scope names is matched by one of its globs.
bool in_scope(const AllowedSigner& s, const std::string& machine, const std::string& contract,
              const std::string& falsifier) {
  const std::pair<const char*, const std::string*> values[] = {
      {"machine", &machine}, {"contract", &contract}, {"falsifier", &falsifier}};
  for (const auto& [key, value] : values) {
    bool named = false, matched = false;
    for (const auto& [k, glob] : s.scope) {
      if (k != key) continue;
      named = true;
      matched = matched || gtest_pattern_match(glob, *value);
    }
    if (named && !matched) return false;
  }
  return true;
}

}  // namespace

std::string base64_encode(const uint8_t* data, size_t n) {
  init_sodium();
  std::string out(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, n, sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::string key_id(const PublicKey& pub) {
  init_sodium();
  uint8_t h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, pub.data(), pub.size());
  std::string out(sodium_base64_ENCODED_LEN(sizeof h, sodium_base64_VARIANT_ORIGINAL_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), h, sizeof h, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return "SHA256:" + out;
}

SigningKey load_signing_key(const std::string& file) {
  init_sodium();
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    throw std::runtime_error(file + ": cannot read the signing key: " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    throw std::runtime_error(
        fmt::format("{}: the signing key is readable by others (mode {:o}); chmod 600 it", file,
                    st.st_mode & 0777));
  }
  const std::string text = read_regular_file(file, kMaxKeyFileBytes);
  std::istringstream in(text);
  std::string header, body;
  std::getline(in, header);
  std::getline(in, body);
  const auto h = split_ws(header);
  if (h.size() != 2 || h[0] != kKeyHeader) {
    throw std::runtime_error(
        fmt::format("{}:1:1: not a pv signing key (expected '{} <name>')", file, kKeyHeader));
  }
  if (!safe_name(h[1])) {
    throw std::runtime_error(fmt::format("{}:1:{}: signer name '{}' must be 1-64 of [A-Za-z0-9._-]",
                                         file, word_col(header, 1), h[1]));
  }
  SigningKey k;
  k.name = h[1];
  const auto b = split_ws(body);
  if (b.size() != 1 || !base64_decode(b[0], k.secret.data(), k.secret.size())) {
    throw std::runtime_error(
        fmt::format("{}:2:1: the key is not the base64 of 64 bytes (seed and public key)", file));
  }
  // The secret key's second half is its public key; a key whose halves disagree was edited.
  std::array<uint8_t, 32> seed{};
  std::copy(k.secret.begin(), k.secret.begin() + 32, seed.begin());
  std::array<uint8_t, 64> again{};
  crypto_sign_seed_keypair(k.pub.data(), again.data(), seed.data());
  if (!std::equal(again.begin(), again.end(), k.secret.begin())) {
    throw std::runtime_error(
        fmt::format("{}:2:1: the key's public half does not belong to its seed", file));
  }
  sodium_memzero(again.data(), again.size());
  sodium_memzero(seed.data(), seed.size());
  return k;
}

std::pair<std::string, std::string> generate_key_pair(const std::string& dir,
                                                      const std::string& name) {
  init_sodium();
  if (!safe_name(name)) {
    throw std::runtime_error("signer name '" + name + "' must be 1-64 of [A-Za-z0-9._-]");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir + ": cannot create: " + ec.message());
  const std::string key_file = (fs::path(dir) / (name + ".key")).string();
  const std::string pub_file = (fs::path(dir) / (name + ".pub")).string();
  for (const auto& f : {key_file, pub_file}) {
    if (fs::exists(fs::symlink_status(f, ec))) {
      throw std::runtime_error(f + ": exists; refusing to overwrite a key");
    }
  }
  PublicKey pub{};
  std::array<uint8_t, 64> secret{};
  crypto_sign_keypair(pub.data(), secret.data());
  auto write_new = [](const std::string& path, const std::string& text, mode_t mode) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) throw std::runtime_error(path + ": cannot create: " + std::strerror(errno));
    // The mode given to open is filtered by the umask; the private key must end up 0600.
    if (::fchmod(fd, mode) != 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      throw std::runtime_error(path + ": cannot set its mode: " + why);
    }
    size_t off = 0;
    while (off < text.size()) {
      const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        throw std::runtime_error(path + ": cannot write: " + why);
      }
      off += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      throw std::runtime_error(path + ": cannot write: " + std::strerror(errno));
    }
  };
  std::string secret_text =
      std::string(kKeyHeader) + " " + name + "\n" + base64_encode(secret.data(), 64) + "\n";
  sodium_memzero(secret.data(), secret.size());
  write_new(key_file, secret_text, 0600);
  sodium_memzero(secret_text.data(), secret_text.size());
  write_new(pub_file, name + " ed25519 " + base64_encode(pub.data(), pub.size()) + "\n", 0644);
  return {key_file, pub_file};
}

std::string canonical_bundle_bytes(const nlohmann::json& bundle) {
  if (!bundle.is_object() || !bundle.contains("signature")) {
    return bundle.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  nlohmann::json copy = bundle;
  copy.erase("signature");
  return copy.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void sign_bundle(nlohmann::json& bundle, const SigningKey& key) {
  init_sodium();
  const std::string bytes = canonical_bundle_bytes(bundle);
  std::array<uint8_t, crypto_sign_BYTES> sig{};
  crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const uint8_t*>(bytes.data()),
                       bytes.size(), key.secret.data());
  bundle["signature"] = {{"algorithm", "ed25519"},
                         {"signer", key.name},
                         {"public_key", base64_encode(key.pub.data(), key.pub.size())},
                         {"key_id", key_id(key.pub)},
                         {"value", base64_encode(sig.data(), sig.size())}};
}

AllowedSigners load_allowed_signers(const std::string& file) {
  AllowedSigners out;
  out.file = file;
  std::error_code ec;
  if (!fs::exists(file, ec)) return out;
  const std::string text = read_regular_file(file, kMaxKeyFileBytes * 16);
  std::istringstream in(text);
  std::string raw;
  int lineno = 0;
  while (std::getline(in, raw)) {
    ++lineno;
    std::string line = raw;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    auto w = split_ws(line);
    if (w.empty()) continue;
    auto fail = [&](size_t word, const std::string& what) {
      return std::runtime_error(
          fmt::format("{}:{}:{}: {}", file, lineno, word_col(raw, word), what));
    };
    AllowedSigner s;
    s.line = lineno;
    size_t at = 0;
    if (w[0] == "@revoked") {
      s.revoked = true;
      at = 1;
    } else if (w[0][0] == '@') {
      throw fail(0, "unknown marker '" + w[0] + "' (the one marker is @revoked)");
    }
    if (w.size() != at + 4) {
      throw fail(std::min(w.size() - 1, at + 4),
                 "expected '[@revoked] <name> ed25519 <base64 public key> <scope>'");
    }
    s.name = w[at];
    if (!safe_name(s.name))
      throw fail(at, "signer name '" + s.name + "' must be 1-64 of [A-Za-z0-9._-]");
    if (w[at + 1] != "ed25519") throw fail(at + 1, "key type '" + w[at + 1] + "' is not ed25519");
    if (!base64_decode(w[at + 2], s.pub.data(), s.pub.size())) {
      throw fail(at + 2, "public key is not the base64 of 32 bytes");
    }
    s.scope_text = w[at + 3];
    std::string item;
    std::istringstream items(s.scope_text);
    while (std::getline(items, item, ',')) {
      const auto eq = item.find('=');
      const std::string key = eq == std::string::npos ? item : item.substr(0, eq);
      if (eq == std::string::npos || eq + 1 == item.size() ||
          (key != "machine" && key != "contract" && key != "falsifier")) {
        throw fail(at + 3, "scope item '" + item +
                               "' is not machine=<glob>, contract=<glob> or falsifier=<glob>");
      }
      s.scope.emplace_back(key, item.substr(eq + 1));
    }
    if (s.scope.empty()) throw fail(at + 3, "empty scope");
    out.signers.push_back(std::move(s));
  }
  return out;
}

namespace {

// Whether the bundle's signature verifies over the bundle against the public key it
// carries. On false, r.state and r.reason say why; on true, `pub` and r.key_id are set.
bool embedded_signature_verifies(const nlohmann::json& bundle, PublicKey& pub, SignatureCheck& r) {
  init_sodium();
  const auto sit = bundle.is_object() ? bundle.find("signature") : bundle.end();
  if (!bundle.is_object() || sit == bundle.end()) {
    r.state = SignatureState::kUnsigned;
    r.reason = "unsigned: no signature, so it earns no credit on another machine";
    return false;
  }
  const nlohmann::json& s = *sit;
  auto field = [&](const char* k) {
    const auto it = s.is_object() ? s.find(k) : s.end();
    return it != s.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::array<uint8_t, crypto_sign_BYTES> sig{};
  if (!s.is_object() || field("algorithm") != "ed25519") {
    r.state = SignatureState::kMalformed;
    r.reason = "malformed signature: /signature/algorithm is not \"ed25519\"";
    return false;
  }
  if (!base64_decode(field("public_key"), pub.data(), pub.size())) {
    r.state = SignatureState::kMalformed;
    r.reason = "malformed signature: /signature/public_key is not the base64 of 32 bytes";
    return false;
  }
  r.key_id = key_id(pub);
  if (!base64_decode(field("value"), sig.data(), sig.size())) {
    r.state = SignatureState::kMalformed;
    r.reason = "malformed signature: /signature/value is not the base64 of 64 bytes";
    return false;
  }
  const std::string bytes = canonical_bundle_bytes(bundle);
  const bool verifies =
      crypto_sign_verify_detached(sig.data(), reinterpret_cast<const uint8_t*>(bytes.data()),
                                  bytes.size(), pub.data()) == 0;
  if (!verifies) {
    r.state = SignatureState::kBadSignature;
    r.reason = "signature does not verify (key " + r.key_id +
               "): the signed content was changed after signing";
    return false;
  }
  return true;
}

}  // namespace

SignatureCheck check_bundle_signature(const nlohmann::json& bundle, const AllowedSigners& allowed,
                                      const std::string& machine_dir) {
  SignatureCheck r;
  PublicKey pub{};
  if (!embedded_signature_verifies(bundle, pub, r)) return r;
  const AllowedSigner* listed = nullptr;
  for (const auto& a : allowed.signers) {
    if (a.pub != pub) continue;
    if (a.revoked) {
      r.state = SignatureState::kRevoked;
      r.signer = a.name;
      r.reason = fmt::format("signed by {} (key {}), revoked at {}:{}", a.name, r.key_id,
                             allowed.file, a.line);
      return r;
    }
    if (listed == nullptr) listed = &a;
  }
  if (listed == nullptr) {
    r.state = SignatureState::kUnknownSigner;
    r.reason =
        fmt::format("signed by key {}, which {} does not list", r.key_id,
                    allowed.file.empty() ? std::string("no allowed-signers file") : allowed.file);
    return r;
  }
  r.signer = listed->name;
  const std::string machine = str_at(bundle, "environment", "machine_id");
  const std::string contract = str_at(bundle, "contract", "id");
  const std::string falsifier = str_at(bundle, "falsifier", "id");
  const AllowedSigner* covering = nullptr;
  for (const auto& a : allowed.signers) {
    if (a.pub == pub && !a.revoked && in_scope(a, machine, contract, falsifier)) {
      covering = &a;
      break;
    }
  }
  if (covering == nullptr) {
    r.state = SignatureState::kOutOfScope;
    r.reason = fmt::format(
        "signed by {} (key {}), whose scope {} at {}:{} does not cover machine {}, contract "
        "{}, falsifier {}",
        listed->name, r.key_id, listed->scope_text, allowed.file, listed->line, machine, contract,
        falsifier);
    return r;
  }
  if (!machine_dir.empty() && machine_dir != machine) {
    r.state = SignatureState::kWrongPlace;
    r.reason = fmt::format(
        "signed by {} for machine {}, but it lies under runs/{}: a copy does not make another "
        "machine",
        covering->name, machine, machine_dir);
    return r;
  }
  r.signer = covering->name;
  r.state = SignatureState::kTrusted;
  r.reason = fmt::format("signed by {} (key {}, {}:{})", covering->name, r.key_id, allowed.file,
                         covering->line);
  return r;
}

std::string verified_key_id(const nlohmann::json& bundle) {
  SignatureCheck r;
  PublicKey pub{};
  return embedded_signature_verifies(bundle, pub, r) ? r.key_id : std::string();
}

MachineCount count_machines(const std::vector<MachineClaim>& claims) {
  // Union-find over the nodes "m:<machine id>" and "k:<key id>"; each signed claim joins
  // its machine id and its key.
  std::map<std::string, std::string> parent;
  std::function<std::string(const std::string&)> find = [&](const std::string& x) {
    auto it = parent.find(x);
    if (it == parent.end()) {
      parent.emplace(x, x);
      return x;
    }
    if (it->second == x) return x;
    std::string root = find(it->second);
    parent[x] = root;
    return root;
  };
  for (const auto& c : claims) {
    const std::string m = find("m:" + c.machine);
    if (c.key_id.empty()) continue;
    const std::string k = find("k:" + c.key_id);
    if (m != k) parent[m] = k;
  }
  std::set<std::string> roots;
  std::map<std::string, std::set<std::string>> ids_of_key;
  for (const auto& c : claims) {
    roots.insert(find("m:" + c.machine));
    if (!c.key_id.empty()) ids_of_key[c.key_id].insert(c.machine);
  }
  MachineCount out;
  out.machines = static_cast<int>(roots.size());
  for (const auto& [key, ids] : ids_of_key) {
    if (ids.size() < 2) continue;
    std::string list;
    for (const auto& id : ids) list += (list.empty() ? "" : ", ") + id;
    if (!out.note.empty()) out.note += "; ";
    out.note += fmt::format("machine ids {} are signed by one key {}", list, key);
  }
  return out;
}

}  // namespace pv::harness
