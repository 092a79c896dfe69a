// `pv evidence gc`: evidence accumulates one bundle per falsifier run; gc removes stale
// bundles (see contract_staleness_check) and, among the fresh ones, keeps one per
// (contract, falsifier, machine id), so every machine's latest verdict survives.
//
// Which one is kept respects signatures, because a bundle is a file anyone can write: an
// unsigned or forged bundle dated tomorrow under a machine's id must not make gc delete
// the bundle that machine's key signed, and must not be what gc keeps in its place.
// "Verified" below is exactly what pv validate credits committed evidence for
// (check_bundle_signature, harness/signing.h): the signature verifies against an
// unrevoked key of the allowed-signers file whose scope covers the bundle, and a bundle
// lying at runs/<m>/<contract>/<falsifier>.json was signed for machine <m>.
//   1. A stale bundle is removed, signed or not: it earns nothing anywhere.
//   2. In a group that holds a verified bundle, the newest verified one (by generated_at,
//      then path) is kept. Older verified ones are removed as superseded; every bundle
//      that does not verify is removed, however new it claims to be, with its reason (an
//      unsigned, edited, unknown-signer, revoked, out-of-scope or misplaced bundle cannot
//      be credited in place of the verified one, and keeping it next to it would let
//      `pv evidence merge`, which reads dates, not signatures, prefer it).
//   3. A group with no verified bundle (this machine's own unsigned runs, or a machine no
//      key vouches for) keeps its newest bundle, as before signatures.
// So gc never deletes a verified bundle except for a newer verified one of the same
// machine, contract and falsifier.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace pv::harness {

struct GcResult {
  int kept = 0;
  int kept_verified = 0;             // of `kept`, those whose signature is verified
  std::vector<std::string> removed;  // "path (why)", sorted
};

// `allowed_signers`: the allowed-signers file; empty -> <root>/evidence/allowed_signers
// (a missing file verifies nothing). Throws std::runtime_error "file:line:col: ..." on a
// malformed allowed-signers line, before anything is removed.
GcResult gc_evidence(const std::filesystem::path& dir, const std::filesystem::path& root,
                     bool dry_run, const std::filesystem::path& allowed_signers = {});

}  // namespace pv::harness
