#include "harness/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "harness/temp_files.h"

namespace pv::harness {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view content,
                       const AtomicWriteHooks* hooks) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  // Same directory as the target, so rename() is atomic (same filesystem). The writer's pid
  // is in the name: a leftover of a killed pv is recognised and removed at the next start
  // (clean_stale_temps), and it is registered so an interrupted pv removes it itself.
  std::string tmp =
      (dir / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-XXXXXX"))
          .string();
  const int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) fail("cannot create a temporary file for", path);
  struct Registered {
    int slot;
    ~Registered() { unregister_temp(slot); }
  } registered{register_temp(tmp)};
  const size_t chunk = hooks && hooks->chunk_bytes > 0 ? hooks->chunk_bytes : (1u << 20);
  size_t off = 0;
  while (off < content.size()) {
    const size_t n = std::min(chunk, content.size() - off);
    const ssize_t w = ::write(fd, content.data() + off, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = saved;
      fail("cannot write", tmp);
    }
    off += static_cast<size_t>(w);
  }
  if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = saved;
    fail("cannot sync", tmp);
  }
  ::close(fd);
  if (hooks && hooks->before_rename) hooks->before_rename();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    fail("cannot rename the temporary file onto", path);
  }
  // Make the rename itself durable.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace pv::harness
