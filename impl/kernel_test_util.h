// File: impl/kernel_test_util.h
//
// Small helpers shared by the impl/ operation tests.

#ifndef HMMREF_IMPL_KERNEL_TEST_UTIL_H_
#define HMMREF_IMPL_KERNEL_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "impl/kernel.h"
#include "model/types.h"

namespace hmm::impl::test_util {

constexpr uint32_t kRW = kProtRead | kProtWrite;
constexpr uint64_t kPage = kPageSize;

// The name of a test parameterized over both semantics profiles.
inline std::string ProfileParamName(const ::testing::TestParamInfo<Profile>& info) {
  return info.param == Profile::kV18 ? "V18" : "Default";
}

inline std::string Join(const std::vector<std::string>& lines) {
  std::string s;
  for (const std::string& l : lines) s += l + "\n";
  return s;
}

// Every step of these tests ends with the representation invariant intact.
#define EXPECT_REP_OK(k)                                                  \
  do {                                                                    \
    std::vector<std::string> rep_ = (k).RepInvariant();                   \
    EXPECT_TRUE(rep_.empty()) << ::hmm::impl::test_util::Join(rep_);      \
  } while (0)

inline std::vector<uint8_t> Fill(uint64_t n, uint8_t v) { return std::vector<uint8_t>(n, v); }

inline std::optional<PteInfo> PteAt(const Kernel& k, Pid pid, uint64_t addr) {
  for (const PteInfo& p : k.Ptes(pid)) {
    if (p.vpn == addr / kPage) return p;
  }
  return std::nullopt;
}

// "vpn:pfn[w][z][d] ...": PTEs (or a mirror's pt) as one comparable string.
inline std::string ShowPtes(const std::vector<PteInfo>& ptes) {
  std::string s;
  for (const PteInfo& p : ptes) {
    s += Hex(p.vpn) + ":" + Hex(p.pfn) + (p.write ? "w" : "") + (p.zero ? "z" : "") +
         (p.device ? "d" : "") + " ";
  }
  return s;
}

inline uint64_t MapOrDie(Kernel& k, Pid pid, uint64_t npages, uint32_t prot, uint32_t flags) {
  Result<uint64_t> r = k.Mmap(pid, 0, npages * kPage, prot, flags);
  EXPECT_TRUE(r.ok()) << ErrnoName(r.err);
  return r.value;
}

// Four-page sections (small device regions), the profile, and RAM.
inline Config SmallConfig(Profile profile = Profile::kDefault,
                          uint64_t ram_pages = kDefaultRamPages) {
  Config c;
  c.ram_pages = ram_pages;
  c.section_bytes = 4 * kPage;
  c.profile = profile;
  return c;
}

// npages pages of bytes that differ from page to page and from seed to seed.
inline std::vector<uint8_t> Pattern(uint64_t npages, uint8_t seed) {
  std::vector<uint8_t> v(npages * kPage);
  for (uint64_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + i / kPage);
  return v;
}

// CpuWrite in kMaxAccess pieces.
inline Errno CpuWriteAll(Kernel& k, Pid pid, uint64_t addr, const std::vector<uint8_t>& data) {
  for (uint64_t off = 0; off < data.size(); off += kMaxAccess) {
    uint64_t n = std::min<uint64_t>(kMaxAccess, data.size() - off);
    Errno err = k.CpuWrite(pid, addr + off, {data.begin() + off, data.begin() + off + n});
    if (err != Errno::kOk) return err;
  }
  return Errno::kOk;
}

// CpuRead in kMaxAccess pieces, each expected to succeed.
inline std::vector<uint8_t> CpuReadAll(Kernel& k, Pid pid, uint64_t addr, uint64_t len) {
  std::vector<uint8_t> out;
  for (uint64_t off = 0; off < len; off += kMaxAccess) {
    Result<std::vector<uint8_t>> r = k.CpuRead(pid, addr + off, std::min(kMaxAccess, len - off));
    EXPECT_TRUE(r.ok()) << ErrnoName(r.err);
    out.insert(out.end(), r.value.begin(), r.value.end());
  }
  return out;
}

// The device page table of a mirror, empty if it is not registered.
inline std::vector<PteInfo> PtOf(const Kernel& k, uint64_t mirror) {
  for (const MirrorInfo& m : k.Mirrors()) {
    if (m.id == mirror) return m.pt;
  }
  return {};
}

// --- Device-private memory (docs/devmem.md) ---

inline DeviceEventInfo PageFree(uint64_t devmem, uint64_t pfn) {
  DeviceEventInfo e;
  e.devmem = devmem;
  e.pfn = pfn;
  return e;
}

inline DeviceEventInfo Fault(uint64_t devmem, uint64_t pfn, Pid pid, uint64_t addr) {
  DeviceEventInfo e = PageFree(devmem, pfn);
  e.fault = true;
  e.pid = pid.value;
  e.addr = addr;
  return e;
}

// "free(devmem,pfn) fault(devmem,pfn,pid,addr) ...": readable when a test fails.
inline std::string Show(const std::vector<DeviceEventInfo>& events) {
  std::string s;
  for (const DeviceEventInfo& e : events) {
    s += e.fault ? "fault(" : "free(";
    s += std::to_string(e.devmem) + "," + std::to_string(e.pfn);
    if (e.fault) s += "," + std::to_string(e.pid) + "," + std::to_string(e.addr);
    s += ") ";
  }
  return s;
}

inline std::string Events(const Kernel& k) { return Show(k.DeviceEvents()); }

// A process with a private RW mapping of `npages`, and a one-section region
// (device 7) of SmallConfig()'s four-page sections with its first page
// allocated (held by the driver).
struct DevmemFixture {
  explicit DevmemFixture(uint64_t npages = 4, Config c = SmallConfig()) : k(c) {
    pid = k.CreateProcess().value;
    a = MapOrDie(k, pid, npages, kRW, kMapPrivate);
    devmem = k.HmmDevmemAdd(DeviceId(7), 1).value;
    pfn = k.DevicePageAlloc(devmem).value;
  }
  Kernel k;
  Pid pid;
  uint64_t a = 0, devmem = 0, pfn = 0;
};

}  // namespace hmm::impl::test_util

#endif  // HMMREF_IMPL_KERNEL_TEST_UTIL_H_
