// File: model/types.h
//
// The shared vocabulary of hmmref: page geometry, strong ids, protection and
// mapping flags, and the one error enum. This is the only model header that
// impl/ may include (see docs/README.md, "Layers"); it holds no logic beyond
// constructors, comparisons and names.

#ifndef HMMREF_MODEL_TYPES_H_
#define HMMREF_MODEL_TYPES_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace hmm {

// 4 KiB pages, as on x86-64 (arch/x86/include/asm/page_types.h PAGE_SHIFT).
constexpr uint64_t kPageShift = 12;
constexpr uint64_t kPageSize = uint64_t{1} << kPageShift;
constexpr uint64_t kPageMask = ~(kPageSize - 1);

// 48-bit user virtual address space, 4-level paging (TASK_SIZE_MAX on x86-64
// is 2^47 - 4096; hmmref uses the full 2^48 so that the 4-level walk covers
// the whole space; addresses at or above kTaskSize are out of range).
constexpr uint64_t kUserVaBits = 48;
constexpr uint64_t kTaskSize = uint64_t{1} << kUserVaBits;
constexpr uint64_t kMaxVpn = kTaskSize >> kPageShift;

// The first address `mmap` without MAP_FIXED considers (mm->mmap_base is
// randomised in the kernel; hmmref fixes it so runs are reproducible). The
// search is bottom-up first fit (mm/mmap.c unmapped_area()).
constexpr uint64_t kMmapBase = uint64_t{0x10000000};

// A strongly typed 64-bit id: Tag keeps Vpn, Pfn, Pid and DeviceId apart.
template <typename Tag>
struct StrongId {
  uint64_t value = 0;

  constexpr StrongId() = default;
  constexpr explicit StrongId(uint64_t v) : value(v) {}

  friend constexpr bool operator==(StrongId a, StrongId b) { return a.value == b.value; }
  friend constexpr bool operator!=(StrongId a, StrongId b) { return a.value != b.value; }
  friend constexpr bool operator<(StrongId a, StrongId b) { return a.value < b.value; }
  friend constexpr bool operator<=(StrongId a, StrongId b) { return a.value <= b.value; }
  friend constexpr bool operator>(StrongId a, StrongId b) { return a.value > b.value; }
  friend constexpr bool operator>=(StrongId a, StrongId b) { return a.value >= b.value; }
};

struct VpnTag {};
struct PfnTag {};
struct PidTag {};
struct DeviceIdTag {};
struct PinIdTag {};

// Virtual page number: user address >> kPageShift.
using Vpn = StrongId<VpnTag>;
// Physical frame number of a struct page (system RAM or, later, device memory).
using Pfn = StrongId<PfnTag>;
// Process id, handed out 1, 2, 3, ... by CreateProcess and Fork.
using Pid = StrongId<PidTag>;
// Device id (the dummy device's minor number); used from the mirroring issue on.
using DeviceId = StrongId<DeviceIdTag>;
// Handle of one GUP pin (PinUserPages), handed out 1, 2, 3, ...
using PinId = StrongId<PinIdTag>;

constexpr Vpn AddrToVpn(uint64_t addr) { return Vpn(addr >> kPageShift); }
constexpr uint64_t VpnToAddr(Vpn vpn) { return vpn.value << kPageShift; }
constexpr bool PageAligned(uint64_t x) { return (x & (kPageSize - 1)) == 0; }

// Errors, named after the kernel errnos they stand for. Every operation of
// model and impl returns one of these; equal inputs must give equal Errnos.
enum class Errno : uint8_t {
  kOk = 0,  // success
  kInval,   // EINVAL: the arguments themselves are malformed (unaligned, zero length, bad flags)
  kFault,   // EFAULT: no mapping at the address, or the mapping forbids the access
  kPerm,    // EPERM: the operation is not permitted on this object
  kBusy,    // EBUSY: the object is in use (a range invalidated concurrently; retry)
  kNoMem,   // ENOMEM: out of memory, or (mmap family) the range is not mapped / no room
  kNoEnt,   // ENOENT: the named object (pin, mirror, device) does not exist
  kRange,   // ERANGE: a value is outside the representable range
  kSrch,    // ESRCH: no such process (unknown or exited pid)
  kAgain,   // EAGAIN: transient failure; the caller may retry as is
  kAcces,   // EACCES: the protection asked for is not allowed on this mapping
  kNxio,    // ENXIO: no such device or address
};

// "kInval" etc., for messages and traces. Never null.
const char* ErrnoName(Errno e);
// "0x1f": how addresses, pfns and lengths are written in messages, traces and
// counterexamples, everywhere in hmmref.
std::string Hex(uint64_t v);

// Parses the name printed by ErrnoName ("kInval") or the kernel's ("EINVAL").
bool ParseErrno(const char* name, Errno* out);

// An operation's outcome: an Errno and, when it is kOk, a value.
template <typename T>
struct [[nodiscard]] Result {
  Errno err = Errno::kOk;
  T value{};

  Result() = default;
  Result(Errno e) : err(e) {}  // NOLINT: an error converts implicitly
  Result(T v) : err(Errno::kOk), value(std::move(v)) {}  // NOLINT: so does a value
  bool ok() const { return err == Errno::kOk; }
};

// Protection bits, as mmap's PROT_* (include/uapi/asm-generic/mman-common.h).
// PROT_EXEC is not modeled: no instruction fetch happens in hmmref. Only the
// linux-6.1 profile keeps it in a VMA (on x86 an executable page is readable)
// and accepts PROT_SEM (docs/divergences.md D3, D4).
enum Prot : uint32_t {
  kProtNone = 0,
  kProtRead = 1,
  kProtWrite = 2,
  kProtExec = 4,  // linux-6.1 only
  kProtSem = 8,   // linux-6.1 only: accepted by mprotect, kept nowhere
};
constexpr uint32_t kProtMask = kProtRead | kProtWrite;

// Mapping flags, as mmap's MAP_* (anonymous is implied: file mappings come later).
enum MapFlags : uint32_t {
  kMapShared = 1,
  kMapPrivate = 2,
  kMapFixed = 4,
};

// Semantics profiles: where the seed as posted (v18) differs from what upstream
// later fixed, the difference is a profile, not a fork of the code: device-memory
// placement (docs/devmem.md). linux-6.1 is what the kernel oracle replays
// traces on: Linux 6.1 with its test driver, its bounds and its bugs
// (docs/divergences.md); the model alone implements it (impl/ implements
// default and v18, and props/ never runs a linux-6.1 trace against it).
enum class Profile : uint8_t {
  kDefault,  // the seed's API with the later fixes
  kV18,      // the seed as posted
  kLinux61,  // Linux 6.1.192 with lib/test_hmm.c, as the oracle's guest runs it (model only)
};

// The machine both kernels are built for (a trace's set-up lines).
struct Config {
  uint64_t ram_pages = 1024;               // boot System RAM: pfns [0, ram_pages)
  unsigned max_physmem_bits = 46;          // MAX_PHYSMEM_BITS
  uint64_t section_bytes = uint64_t{1} << 27;  // PA_SECTION_SIZE, 128 MiB
  Profile profile = Profile::kDefault;

  bool operator==(const Config& o) const {
    return ram_pages == o.ram_pages && max_physmem_bits == o.max_physmem_bits &&
           section_bytes == o.section_bytes && profile == o.profile;
  }
};

// Bounds of Config's fields (a trace's set-up lines are checked against them).
constexpr uint64_t kMinRamPages = 1;
constexpr uint64_t kMaxRamPages = 65536;
constexpr unsigned kMinPhysmemBits = 32;
constexpr unsigned kMaxPhysmemBits = 52;
constexpr uint64_t kMinSectionBytes = kPageSize;
constexpr uint64_t kMaxSectionBytes = uint64_t{1} << 30;

// A device pfn must fit the offset field of a device-private swap entry
// (impl/pte.h kSwpOffsetBits; props/ asserts the two agree), so device memory
// ends at or below 2^(kPageShift + kDevicePfnBits).
constexpr unsigned kDevicePfnBits = 46;

// Mirroring (docs/mirror.md).
constexpr uint64_t kMaxDevices = 4;          // /dev/hmm_dmirror0..3: device ids 0..3
constexpr uint64_t kMaxMirrors = 64;         // registered at once
constexpr uint64_t kMaxDmirrorPages = 1024;  // one ioctl's bounce buffer (HMM_BUFFER_SIZE)
constexpr uint64_t kMaxRangePages = uint64_t{1} << 20;  // one snapshot/fault range's pfns array (8 MiB)
constexpr uint64_t kDmirrorFaultChunk = 64;  // lib/test_hmm.c dmirror_fault() pfns[64] (6.1)

// HMM_PFN_* of the seed's snapshot and fault (v18/4.14 include/linux/hmm.h):
// flags in the low bits, the pfn above kHmmPfnShift.
enum HmmPfnFlag : uint64_t {
  kHmmPfnValid = 1 << 0,
  kHmmPfnRead = 1 << 1,
  kHmmPfnWrite = 1 << 2,
  kHmmPfnError = 1 << 3,
  kHmmPfnEmpty = 1 << 4,
  kHmmPfnSpecial = 1 << 5,
  kHmmPfnDeviceUnaddressable = 1 << 6,
};
constexpr unsigned kHmmPfnShift = 7;
constexpr uint64_t kHmmPfnFlagMask = (uint64_t{1} << kHmmPfnShift) - 1;

// One byte per page of the dummy device's SNAPSHOT (lib/test_hmm_uapi.h
// HMM_DMIRROR_PROT_*): a kind OR-ed with read or write.
enum DmirrorProt : uint8_t {
  kDmirrorProtError = 0xff,
  kDmirrorProtNone = 0x00,
  kDmirrorProtRead = 0x01,
  kDmirrorProtWrite = 0x02,
  kDmirrorProtZero = 0x10,
  kDmirrorProtDevPrivateLocal = 0x20,
  kDmirrorProtDevPrivateRemote = 0x30,
  kDmirrorProtDevCoherentLocal = 0x40,   // linux-6.1's devices 2 and 3 only
  kDmirrorProtDevCoherentRemote = 0x50,  // linux-6.1's devices 2 and 3 only
};

// What a dummy-device ioctl copies back on success (struct hmm_dmirror_cmd's
// cpages and faults, and the bytes it wrote to `ptr`: READ's data, SNAPSHOT's
// one byte per page; empty for WRITE).
struct DmirrorResult {
  uint64_t cpages = 0;
  uint64_t faults = 0;
  std::vector<uint8_t> data;

  bool operator==(const DmirrorResult& o) const {
    return cpages == o.cpages && faults == o.faults && data == o.data;
  }
};

// migrate_vma (docs/migrate.md): MIGRATE_PFN_* in 4.14's layout (flags in the
// low bits, the pfn above kMigratePfnShift; include/linux/migrate.h).
enum MigratePfnFlag : uint64_t {
  kMigratePfnValid = 1 << 0,
  kMigratePfnMigrate = 1 << 1,
  kMigratePfnLocked = 1 << 2,
  kMigratePfnWrite = 1 << 3,
  kMigratePfnDevice = 1 << 4,
  kMigratePfnError = 1 << 5,
};
constexpr unsigned kMigratePfnShift = 6;
constexpr uint64_t kMigratePfnFlagMask = (uint64_t{1} << kMigratePfnShift) - 1;
constexpr uint64_t MigratePfn(uint64_t pfn) { return (pfn << kMigratePfnShift) | kMigratePfnValid; }
constexpr uint64_t MigratePfnToPfn(uint64_t mpfn) { return mpfn >> kMigratePfnShift; }

// What a migration selects (6.1 include/linux/migrate.h MIGRATE_VMA_SELECT_*).
enum MigrateVmaSelect : uint32_t {
  kMigrateVmaSelectSystem = 1 << 0,
  kMigrateVmaSelectDevicePrivate = 1 << 1,
  kMigrateVmaSelectDeviceCoherent = 1 << 2,  // linux-6.1's devices 2 and 3 only
};

// The dummy device's migration (docs/migrate.md).
constexpr uint64_t kDmirrorMigrateChunk = 64;              // src_pfns[64] per migrate_vma call
constexpr uint64_t kDmirrorChunkBytes = uint64_t{1} << 28;  // DEVMEM_CHUNK_SIZE, 256 MiB
constexpr uint64_t kDmirrorFlagFailAlloc = 1;              // HMM_DMIRROR_FLAG_FAIL_ALLOC

// mremap flags (include/uapi/linux/mman.h).
enum MremapFlags : uint32_t {
  kMremapMaymove = 1,
  kMremapFixed = 2,
};

}  // namespace hmm

namespace std {
template <typename Tag>
struct hash<hmm::StrongId<Tag>> {
  size_t operator()(hmm::StrongId<Tag> id) const { return std::hash<uint64_t>()(id.value); }
};
}  // namespace std

#endif  // HMMREF_MODEL_TYPES_H_
