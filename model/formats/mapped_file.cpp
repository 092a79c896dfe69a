#include "model/formats/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>

#include "mutants/mutant.h"

namespace pv::model {

static_assert(std::endian::native == std::endian::little,
              "GGUF and safetensors are little-endian; pv reads them in place");

namespace {

std::string compose(const std::string& path, uint64_t offset, const std::string& subject,
                    const std::string& detail) {
  std::string msg = path;
  if (offset != FormatError::kNoOffset) msg += ": byte " + std::to_string(offset);
  if (!subject.empty()) msg += ": " + subject;
  msg += ": " + detail;
  return msg;
}

}  // namespace

FormatError::FormatError(std::string path, uint64_t offset, std::string subject, std::string detail)
    : std::runtime_error(compose(path, offset, subject, detail)),
      path_(std::move(path)),
      offset_(offset),
      subject_(std::move(subject)),
      detail_(std::move(detail)) {}

std::string tensor_subject(std::string_view name) { return "tensor '" + std::string(name) + "'"; }
std::string key_subject(std::string_view name) { return "key '" + std::string(name) + "'"; }

namespace {

// Opens `path` read-only and checks it is a regular file. O_NONBLOCK: opening a FIFO with no
// writer would otherwise block forever before fstat could refuse it.
int open_regular(const std::string& path, struct stat* st) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    throw FormatError(path, FormatError::kNoOffset, "",
                      std::string("cannot open: ") + std::strerror(errno));
  }
  if (::fstat(fd, st) != 0) {
    int err = errno;
    ::close(fd);
    throw FormatError(path, FormatError::kNoOffset, "",
                      std::string("cannot stat: ") + std::strerror(err));
  }
  if (!S_ISREG(st->st_mode) && !mutant::planted(mutant::Bug::NonRegularFileRead)) {
    ::close(fd);
    throw FormatError(path, FormatError::kNoOffset, "",
                      S_ISDIR(st->st_mode) ? "is a directory, not a file"
                                           : "is not a regular file (a FIFO, socket or device); "
                                             "pv reads only regular files");
  }
  return fd;
}

}  // namespace

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  struct stat st {};
  int fd = open_regular(path, &st);
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<uint64_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      throw FormatError(path, FormatError::kNoOffset, "",
                        std::string("cannot mmap: ") + std::strerror(err));
    }
    f->map_base_ = p;
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping stays valid after close
  return f;
}

std::string read_small_file(const std::string& path, uint64_t max_bytes) {
  struct stat st {};
  int fd = open_regular(path, &st);
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    throw FormatError(path, FormatError::kNoOffset, "",
                      "file of " + std::to_string(st.st_size) + " bytes exceeds the limit of " +
                          std::to_string(max_bytes) + " bytes");
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t r = ::read(fd, out.data() + got, out.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int err = errno;
      ::close(fd);
      throw FormatError(path, got, "", std::string("read error: ") + std::strerror(err));
    }
    if (r == 0) break;  // shrank while reading: what is there is what is parsed
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

std::optional<uint64_t> json_too_deep(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t k = 0; k < text.size(); ++k) {
    const char c = text[k];
    if (in_string) {
      if (c == '\\') {
        ++k;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return k;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

const uint8_t* MappedFile::aligned(uint64_t offset, uint64_t n) const {
  const uint8_t* p = data_ == nullptr ? nullptr : data_ + offset;
  if (reinterpret_cast<uintptr_t>(p) % kTensorAlign == 0 || n == 0) return p;
  // operator new[] aligns to __STDCPP_DEFAULT_NEW_ALIGNMENT__ (16 on x86-64 and aarch64).
  static_assert(__STDCPP_DEFAULT_NEW_ALIGNMENT__ >= kTensorAlign);
  std::unique_ptr<uint8_t[]> copy(new uint8_t[n]);
  std::memcpy(copy.get(), p, n);
  std::lock_guard<std::mutex> lock(copies_mu_);
  copies_.push_back(std::move(copy));
  return copies_.back().get();
}

std::shared_ptr<const MappedFile> MappedFile::from_bytes(std::string name,
                                                         std::vector<uint8_t> bytes) {
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = std::move(name);
  f->owned_ = std::move(bytes);
  f->size_ = f->owned_.size();
  f->data_ = f->owned_.empty() ? nullptr : f->owned_.data();
  return f;
}

MappedFile::~MappedFile() {
  if (map_base_ != nullptr) ::munmap(map_base_, size_);
}

const uint8_t* Cursor::take(uint64_t n, std::string_view what) {
  if (n > remaining()) {
    fail("file ends while reading " + std::string(what) + ": needs " + std::to_string(n) +
         " bytes, " + std::to_string(remaining()) + " left (file size " +
         std::to_string(file_.size()) + ")");
  }
  // An empty file has no mapping (data() == nullptr): never offset a null pointer.
  const uint8_t* p = file_.data() == nullptr ? nullptr : file_.data() + pos_;
  pos_ += n;
  return p;
}

uint8_t Cursor::u8(std::string_view what) { return *take(1, what); }

#define PV_CURSOR_READ(name, T)                        \
  T Cursor::name(std::string_view what) {              \
    T v;                                               \
    std::memcpy(&v, take(sizeof(T), what), sizeof(T)); \
    return v;                                          \
  }
PV_CURSOR_READ(u16, uint16_t)
PV_CURSOR_READ(u32, uint32_t)
PV_CURSOR_READ(u64, uint64_t)
PV_CURSOR_READ(f32, float)
PV_CURSOR_READ(f64, double)
#undef PV_CURSOR_READ

std::string_view Cursor::bytes(uint64_t n, std::string_view what) {
  const uint8_t* p = take(n, what);
  return {reinterpret_cast<const char*>(p), static_cast<size_t>(n)};
}

void Cursor::fail_at(uint64_t at, std::string detail) const {
  throw FormatError(file_.path(), at, subject_, std::move(detail));
}

bool add_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_add_overflow(a, b, out);
}
bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  if (mutant::planted(mutant::Bug::ShapeProductWraps)) {
    *out = a * b;
    return false;
  }
  return __builtin_mul_overflow(a, b, out);
}

}  // namespace pv::model
