// A trace in either of its two forms, behind one reader: an APRT directory (trace.json +
// one APRT file per stage) or one safetensors file (stage tensors keyed "L<N>.<stage>" /
// "<stage>", the index in "__metadata__"). model/trace/FORMAT.md describes both; pv diff,
// pv bisect and pv trace-convert take either form on either side.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/trace/trace_dir.h"

namespace pv::model {

struct SafetensorsFile;

enum class TraceFormat { AprtDir, Safetensors };

struct OpenTrace {
  std::string path;
  TraceFormat format = TraceFormat::AprtDir;
  TraceMeta meta;
  std::shared_ptr<const SafetensorsFile> st;  // set for TraceFormat::Safetensors
};

// A directory is an APRT trace; a file is read as a safetensors trace. Throws naming the
// file and the key, byte or line:col of any problem.
OpenTrace open_trace(const std::string& path);
// The index alone (what pv bisect checks before reading any stage).
TraceMeta read_any_trace_meta(const std::string& path);
// One stage's values as float32, checked against the entry's shape (and, for APRT, its
// layer field).
std::vector<float> read_stage(const OpenTrace& t, const TraceEntry& e);

// The safetensors tensor key of an entry: "L<layer>.<name>" or "<name>".
std::string safetensors_key(const std::string& name, int layer);
// Parses a safetensors trace key: "L<N>.<name>", llama.cpp's "<name>-<N>" for its
// per-layer aliases, or a whole-model "<name>" (layer -1).
std::pair<std::string, int> parse_safetensors_key(const std::string& key);

// Writes `meta`'s entries with the values `t` holds for them (any source form) as
// safetensors file `out` or APRT directory `out`. Stage names are written as pv's names
// (aliases resolved), user stages as declared; values are bit-exact float32.
void write_safetensors_trace(const OpenTrace& t, const std::string& out);
void write_aprt_trace(const OpenTrace& t, const std::string& out);
// The format `pv trace --out PATH` / pv trace-convert picks: ".safetensors" suffix or not.
TraceFormat format_for_output(const std::string& path, const std::string& format_flag);

}  // namespace pv::model
