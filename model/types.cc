// File: model/types.cc

#include "model/types.h"

#include <cstring>

namespace hmm {
namespace {

struct ErrnoNames {
  Errno e;
  const char* name;
  const char* kernel;
};

constexpr ErrnoNames kNames[] = {
    {Errno::kOk, "kOk", "OK"},          {Errno::kInval, "kInval", "EINVAL"},
    {Errno::kFault, "kFault", "EFAULT"}, {Errno::kPerm, "kPerm", "EPERM"},
    {Errno::kBusy, "kBusy", "EBUSY"},    {Errno::kNoMem, "kNoMem", "ENOMEM"},
    {Errno::kNoEnt, "kNoEnt", "ENOENT"}, {Errno::kRange, "kRange", "ERANGE"},
    {Errno::kSrch, "kSrch", "ESRCH"},    {Errno::kAgain, "kAgain", "EAGAIN"},
    {Errno::kAcces, "kAcces", "EACCES"}, {Errno::kNxio, "kNxio", "ENXIO"},
};

}  // namespace

const char* ErrnoName(Errno e) {
  for (const ErrnoNames& n : kNames) {
    if (n.e == e) return n.name;
  }
  return "kUnknownErrno";
}

std::string Hex(uint64_t v) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[v % 16]);
    v /= 16;
  } while (v != 0);
  return "0x" + out;
}

bool ParseErrno(const char* name, Errno* out) {
  for (const ErrnoNames& n : kNames) {
    if (std::strcmp(name, n.name) == 0 || std::strcmp(name, n.kernel) == 0) {
      *out = n.e;
      return true;
    }
  }
  return false;
}

}  // namespace hmm
