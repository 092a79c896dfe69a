// Signed evidence: ed25519 signatures (libsodium, in-process) over evidence bundles, and
// the allowed-signers file that says whose signature earns credit for what.
//
// A bundle from another machine is data anyone can write: without a signature, copying a
// GPU bundle under a new machine id and pasting a fresh inputs_digest earns a CUDA status
// with no GPU anywhere. The grader therefore credits committed evidence only when its
// signature verifies against a key the repository lists, unrevoked, with a scope that
// covers the bundle (harness/README.md, "Signed evidence", gives the byte-exact form).
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace pv::harness {

using PublicKey = std::array<uint8_t, 32>;

struct SigningKey {
  std::string name;                  // who holds it ("gpu-h200"); informational in bundles
  std::array<uint8_t, 64> secret{};  // libsodium's form: seed || public key
  PublicKey pub{};
};

// Reads a private key file written by generate_key_pair. Throws std::runtime_error naming
// the file (and the line) when it is unreadable, malformed, or readable by others.
SigningKey load_signing_key(const std::string& file);

// Writes <dir>/<name>.key (mode 0600) and <dir>/<name>.pub; refuses to overwrite either.
// Returns the two paths. Throws std::runtime_error naming the file on any failure.
std::pair<std::string, std::string> generate_key_pair(const std::string& dir,
                                                      const std::string& name);

std::string base64_encode(const uint8_t* data, size_t n);
// "SHA256:" + unpadded base64 of SHA-256(the 32 raw public-key bytes).
std::string key_id(const PublicKey& pub);

// The bytes a signature covers: the bundle with its top-level "signature" member removed,
// serialized compactly with keys in byte order (nlohmann::json::dump(), UTF-8, invalid
// sequences replaced by U+FFFD).
std::string canonical_bundle_bytes(const nlohmann::json& bundle);

// Adds bundle["signature"] = {algorithm, signer, public_key, key_id, value} over
// canonical_bundle_bytes(bundle).
void sign_bundle(nlohmann::json& bundle, const SigningKey& key);

// One line of an allowed-signers file:
//   [@revoked ]<name> ed25519 <base64 public key> <scope> [# comment]
// scope: comma-separated key=glob items over machine, contract and falsifier; every key
// named must match one of its globs ('*' any run, '?' one character).
struct AllowedSigner {
  std::string name;
  PublicKey pub{};
  std::vector<std::pair<std::string, std::string>> scope;
  std::string scope_text;
  bool revoked = false;
  int line = 0;
};

struct AllowedSigners {
  std::string file;  // as given; named in every reason
  std::vector<AllowedSigner> signers;
};

// Reads the allowed-signers file. A missing file is an empty list (nothing is credited);
// a malformed line throws std::runtime_error "file:line:col: what".
AllowedSigners load_allowed_signers(const std::string& file);

enum class SignatureState {
  kTrusted,
  kUnsigned,
  kMalformed,
  kBadSignature,
  kUnknownSigner,
  kRevoked,
  kOutOfScope,
  kWrongPlace,
};

struct SignatureCheck {
  SignatureState state = SignatureState::kUnsigned;
  std::string signer;  // the allowed signer's name when the key is listed
  std::string key_id;  // when the bundle names a key
  std::string reason;  // for people: why it earns nothing, or "signed by ..." when trusted
  bool trusted() const { return state == SignatureState::kTrusted; }
};

// Checks `bundle` (parsed JSON of a pv-evidence-v1 file) against `allowed`. When
// `machine_dir` is not empty it is the machine directory the bundle was found in
// (runs/<machine>/...): a signed bundle lying under another machine's id is refused.
SignatureCheck check_bundle_signature(const nlohmann::json& bundle, const AllowedSigners& allowed,
                                      const std::string& machine_dir);

// The key_id of the key that signed `bundle`, when its signature verifies over the bundle
// against the public key it carries; "" when it is unsigned, malformed or edited. No list
// of allowed signers is consulted: this says only which one key made these bytes, which is
// all that telling machines apart needs.
std::string verified_key_id(const nlohmann::json& bundle);

// Counting machines for `machines: N`. A machine id is a string in the bundle, and a
// signer's scope may cover several ids (machine=*, or no machine item at all), so one key
// could sign the same run under N ids and make N machines. A key is the one thing a
// bundle's author cannot make up more of without holding more keys, so: machine ids joined
// by a common signing key are one machine, and so are keys joined by a common machine id
// (a key rotated on one machine). `key_id` is "" for a run no key vouches for (this
// machine's own run, or an unsigned bundle): it is its machine id alone.
struct MachineClaim {
  std::string machine;
  std::string key_id;
};
struct MachineCount {
  int machines = 0;
  // For people, when a key joined several ids: "machine ids a, b are signed by one key
  // SHA256:...". Empty otherwise.
  std::string note;
};
MachineCount count_machines(const std::vector<MachineClaim>& claims);

}  // namespace pv::harness
