#include "model/formats/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>

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

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw FormatError(path, FormatError::kNoOffset, "",
                      std::string("cannot open: ") + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int err = errno;
    ::close(fd);
    throw FormatError(path, FormatError::kNoOffset, "",
                      S_ISDIR(st.st_mode) ? "is a directory, not a file"
                                          : std::string("cannot stat: ") + std::strerror(err));
  }
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
  return __builtin_mul_overflow(a, b, out);
}

}  // namespace pv::model
