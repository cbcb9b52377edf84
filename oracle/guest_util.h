// File: oracle/guest_util.h
//
// Text and descriptor helpers of the guest runner (oracle/guest_runner.cc):
// splitting lines, numbers, errno names, the run notation for bytes
// ("5a*24576,6869", shared with oracle/host.cc) and a line reader with a
// timeout. Header-only: the runner is one g++ -static command.

#ifndef HMMREF_ORACLE_GUEST_UTIL_H_
#define HMMREF_ORACLE_GUEST_UTIL_H_

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace guest {

// ---------- text helpers ----------

inline std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

inline uint64_t Num(const std::string& s) { return std::strtoull(s.c_str(), nullptr, 0); }

inline std::string Hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

inline const char* ErrnoName(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case ERANGE: return "ERANGE";
    case ENOSYS: return "ENOSYS";
    case ENOTTY: return "ENOTTY";
    case EOVERFLOW: return "EOVERFLOW";
    default: return "EUNKNOWN";
  }
}

inline std::string Err(int e) { return std::string("err ") + ErrnoName(e); }

// Bytes as runs: "5a*24576" for 8 or more equal bytes, hex for the rest,
// segments joined by ','. Empty data is the empty string.
inline std::string EncodeData(const uint8_t* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out, raw;
  auto flush = [&] {
    if (raw.empty()) return;
    if (!out.empty()) out += ',';
    out += raw;
    raw.clear();
  };
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && p[j] == p[i]) ++j;
    if (j - i >= 8) {
      flush();
      if (!out.empty()) out += ',';
      out += kDigits[p[i] >> 4];
      out += kDigits[p[i] & 15];
      out += '*' + std::to_string(j - i);
    } else {
      for (size_t k = i; k < j; ++k) {
        raw += kDigits[p[k] >> 4];
        raw += kDigits[p[k] & 15];
      }
    }
    i = j;
  }
  flush();
  return out;
}

inline std::vector<uint8_t> DecodeData(const std::string& s) {
  std::vector<uint8_t> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    std::string seg = s.substr(pos, end - pos);
    size_t star = seg.find('*');
    if (star != std::string::npos) {
      uint8_t b = static_cast<uint8_t>(std::strtoul(seg.substr(0, star).c_str(), nullptr, 16));
      out.insert(out.end(), Num(seg.substr(star + 1)), b);
    } else {
      for (size_t i = 0; i + 1 < seg.size(); i += 2) {
        out.push_back(static_cast<uint8_t>(std::strtoul(seg.substr(i, 2).c_str(), nullptr, 16)));
      }
    }
    pos = end + 1;
  }
  return out;
}

// ---------- fd helpers ----------

inline bool WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads one '\n'-terminated line from fd (buffered per fd). With timeout_ms
// >= 0, gives up after that long (returns false, *timed_out set).
class LineReader {
 public:
  explicit LineReader(int fd = -1) : fd_(fd) {}
  bool Read(std::string* line, int timeout_ms, bool* timed_out) {
    *timed_out = false;
    for (int waited = 0;;) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        *line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return true;
      }
      if (timeout_ms >= 0) {
        pollfd p = {fd_, POLLIN, 0};
        int r = poll(&p, 1, 1000);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
          waited += 1000;
          if (waited >= timeout_ms || (alive_ && !alive_())) {
            *timed_out = true;
            return false;
          }
          continue;
        }
      }
      char chunk[65536];
      ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  bool (*alive_)() = nullptr;

 private:
  int fd_;
  std::string buf_;
};

}  // namespace guest

#endif  // HMMREF_ORACLE_GUEST_UTIL_H_
