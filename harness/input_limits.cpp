#include "harness/input_limits.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace pv::harness {

std::optional<std::string> json_nesting_error(std::string_view text, int max_depth) {
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
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return fmt::format("byte {}: JSON nested deeper than {} levels", k, max_depth);
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

namespace {

// Length of the valid UTF-8 sequence at s[k], 0 when it is not one (overlongs, surrogates
// and code points past U+10FFFF are invalid, as nlohmann's dump judges them).
size_t utf8_sequence(std::string_view s, size_t k) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(k);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (k + n > s.size()) return 0;
  if (b(k + 1) < lo || b(k + 1) > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if (b(k + i) < 0x80 || b(k + i) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t k = 0; k < text.size();) {
    const size_t n = utf8_sequence(text, k);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++k;
    } else {
      out.append(text.substr(k, n));
      k += n;
    }
  }
  return out;
}

std::optional<size_t> first_invalid_utf8(std::string_view text) {
  for (size_t k = 0; k < text.size();) {
    const size_t n = utf8_sequence(text, k);
    if (n == 0) return k;
    k += n;
  }
  return std::nullopt;
}

std::string read_regular_file(const std::filesystem::path& path, uint64_t max_bytes) {
  const std::string name = path.string();
  // O_NONBLOCK: opening a FIFO with no writer must not block; regular files ignore it.
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw std::runtime_error(name + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error(name + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error(name + (S_ISDIR(st.st_mode)
                                         ? ": is a directory, not a file"
                                         : ": is not a regular file (a FIFO, "
                                           "socket or device); refusing to read it"));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    throw std::runtime_error(
        fmt::format("{}: {} bytes exceed the limit of {} bytes", name, st.st_size, max_bytes));
  }
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  // The file may grow after fstat: read at most the limit plus one byte to notice.
  for (;;) {
    if (got == out.size()) {
      if (out.size() > max_bytes) break;
      out.resize(std::min<uint64_t>(max_bytes + 1, out.size() + 65536));
    }
    const ssize_t r = ::read(fd, out.data() + got, out.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw std::runtime_error(name + ": read error: " + std::strerror(err));
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  if (got > max_bytes) {
    throw std::runtime_error(fmt::format("{}: more than the limit of {} bytes", name, max_bytes));
  }
  out.resize(got);
  return out;
}

}  // namespace pv::harness
