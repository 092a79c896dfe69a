// spec/pv-spec.md as a document: prose that people write (kept byte for byte) around
// generated blocks delimited by `<!-- pv:begin NAME -->` / `<!-- pv:end NAME -->`:
//   version     the version line (semver, amendment number, evidence it was amended from)
//   contracts   what each contract claims and the status the spec records per falsifier
//   scoreboard  coverage tally per contract and in total
//   amendments  the amendment log, newest first (pv amend prepends; older text is kept)
//   state       the machine-readable state (fenced JSON, see spec_state.h)
#pragma once

#include <map>
#include <optional>
#include <string>

#include "harness/spec/spec_contracts.h"
#include "harness/spec/spec_state.h"

namespace pv::harness {

// The content between a block's markers, or nullopt when the block is absent.
std::optional<std::string> spec_block(const std::string& doc, const std::string& name);
// `doc` with the block's content replaced (the block is appended at the end if absent).
std::string spec_replace_block(const std::string& doc, const std::string& name,
                               const std::string& content);

// The document a new spec starts from: prose on the ladder and the bump rules, empty blocks.
std::string spec_template();

// The state recorded in `doc`; a document without a state block is at v0.0.0, amendment 0.
SpecState spec_read_state(const std::string& doc, const std::string& where);

std::string render_version_block(const SpecState& s);
std::string render_contracts_block(const SpecState& s,
                                   const std::map<std::string, ContractInfo>& infos);
std::string render_scoreboard_block(const SpecState& s);
std::string render_state_block(const SpecState& s);

// Short, readable status names for tables ("PARTIAL_ALGORITHM_LEVEL" stays as is: the
// ladder names are the vocabulary people grep for).
std::string md_escape(const std::string& text);

}  // namespace pv::harness
