// Read-only memory-mapped files and the bounds-checked cursor every file reader
// (GGUF, safetensors) parses through. Nothing here trusts a header field: every read
// is checked against the bytes actually present, and every failure is a FormatError
// naming the file, the byte offset and, when known, the tensor or key involved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pv::model {

// A malformed or unusable model file. what() reads like
//   "model.gguf: byte 1234: tensor 'blk.0.attn_q.weight': offset 99999 + 4096 bytes
//    runs past the end of the file (size 50000)".
class FormatError : public std::runtime_error {
 public:
  static constexpr uint64_t kNoOffset = UINT64_MAX;

  // subject: "tensor 'x'", "key 'y'", "" when the place has no name.
  FormatError(std::string path, uint64_t offset, std::string subject, std::string detail);

  const std::string& path() const { return path_; }
  uint64_t offset() const { return offset_; }  // kNoOffset when the place is not in a file
  const std::string& subject() const { return subject_; }
  const std::string& detail() const { return detail_; }

 private:
  std::string path_;
  uint64_t offset_;
  std::string subject_;
  std::string detail_;
};

std::string tensor_subject(std::string_view name);  // "tensor 'name'"
std::string key_subject(std::string_view name);     // "key 'name'"

// The bytes of one file, mapped read-only for the lifetime of the object. Weights
// (TensorViews) point straight into the mapping; whoever holds them holds a
// shared_ptr to the MappedFile.
class MappedFile {
 public:
  // Throws FormatError (offset kNoOffset) when the file cannot be opened or mapped.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  // An in-memory "file" (tests build malformed files without touching the disk).
  static std::shared_ptr<const MappedFile> from_bytes(std::string name, std::vector<uint8_t> bytes);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Bytes [offset, offset + n) of the file at an address aligned to kTensorAlign: the
  // mapping itself when it already is, else a copy that lives as long as the file. Legal
  // files may place tensor data at any byte (GGUF general.alignment 1, a safetensors header
  // whose length is not a multiple of 4), and kernels load floats through typed pointers.
  // The range must lie inside the file.
  const uint8_t* aligned(uint64_t offset, uint64_t n) const;
  static constexpr uint64_t kTensorAlign = 16;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  void* map_base_ = nullptr;  // non-null when mmap()ed
  std::vector<uint8_t> owned_;
  mutable std::mutex copies_mu_;
  mutable std::vector<std::unique_ptr<uint8_t[]>> copies_;
};

// Reads a whole small file (config.json, tokenizer.json) of at most max_bytes. FIFOs,
// devices and directories are refused before anything is read; FormatError names the file.
std::string read_small_file(const std::string& path, uint64_t max_bytes);
constexpr uint64_t kMaxJsonFileBytes = 256ull << 20;

// Byte offset at which `text` (JSON) opens its (max_depth+1)-th nested array or object;
// nullopt when it nests no deeper. nlohmann copies and dumps values recursively.
std::optional<uint64_t> json_too_deep(std::string_view text, int max_depth = 256);

// Sequential little-endian reads with bounds checks. `what` names the field being
// read, so a truncated file says which field ran out of bytes.
class Cursor {
 public:
  explicit Cursor(const MappedFile& file, uint64_t pos = 0) : file_(file), pos_(pos) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return pos_ <= file_.size() ? file_.size() - pos_ : 0; }
  const MappedFile& file() const { return file_; }

  // The subject (tensor/key) reads are attributed to in errors; "" for none.
  void set_subject(std::string subject) { subject_ = std::move(subject); }
  const std::string& subject() const { return subject_; }

  uint8_t u8(std::string_view what);
  uint16_t u16(std::string_view what);
  uint32_t u32(std::string_view what);
  uint64_t u64(std::string_view what);
  float f32(std::string_view what);
  double f64(std::string_view what);
  // n raw bytes; fails before touching memory when fewer than n remain.
  std::string_view bytes(uint64_t n, std::string_view what);
  void skip(uint64_t n, std::string_view what) { bytes(n, what); }

  // Fails with the cursor's file and subject at byte `at`.
  [[noreturn]] void fail_at(uint64_t at, std::string detail) const;
  [[noreturn]] void fail(std::string detail) const { fail_at(pos_, std::move(detail)); }

 private:
  const uint8_t* take(uint64_t n, std::string_view what);

  const MappedFile& file_;
  uint64_t pos_;
  std::string subject_;
};

// a + b and a * b with overflow detection (header fields are untrusted u64s).
bool add_overflows(uint64_t a, uint64_t b, uint64_t* out);
bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out);

}  // namespace pv::model
