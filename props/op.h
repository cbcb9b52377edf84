// File: props/op.h
//
// One operation of a trace: the unit that the property suites generate and
// shrink, that a `.hmm` scenario line parses into (props/trace.h), and that a
// minimized counterexample is printed as. One struct serves all three so a
// failure found by rapidcheck is replayable as text, and a text scenario runs
// through exactly the checks a generated one does (props/runner.h).

#ifndef HMMREF_PROPS_OP_H_
#define HMMREF_PROPS_OP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/types.h"

namespace hmm::props {

// In increasing order of complexity: rapidcheck shrinks toward earlier kinds.
enum class OpKind : uint8_t {
  kCreateProcess,  // process
  kExit,           // exit PID
  kMmap,           // mmap PID ADDR LEN PROT FLAGS
  kMunmap,         // munmap PID ADDR LEN
  kMprotect,       // mprotect PID ADDR LEN PROT
  kMadviseDontneed,// madvise PID ADDR LEN dontneed
  kRead,           // read PID ADDR LEN
  kWrite,          // write PID ADDR DATA
  kPin,            // pin PID ADDR NPAGES
  kUnpin,          // unpin PIN
  kFork,           // fork PID
  kMremap,         // mremap PID OLD_ADDR OLD_LEN NEW_LEN FLAGS [NEW_ADDR]
  kRam,            // ram PAGES: set-up; the RAM size both kernels start with
  // Device-private memory (docs/devmem.md).
  // Field use: devmem_add: device, len; ram_hot*: addr, len; devmap: pid, addr,
  // pfn, prot; physmem_bits, section: len; profile: flags.
  kDevmemAdd,      // devmem_add DEVICE SIZE            -> devmem id
  kDevmemRemove,   // devmem_remove DEVMEM
  kRamHotAdd,      // ram_hotadd START SIZE
  kRamHotRemove,   // ram_hotremove START SIZE
  kDevPageAlloc,   // devpage_alloc DEVMEM              -> pfn
  kDevPagePut,     // devpage_put PFN
  kDevMap,         // devmap PID ADDR PFN PROT          (test-only entry install; PROT r or rw)
  kPageFrees,      // page_frees DEVMEM                 -> count
  // Set-up lines, like `ram`: before every operation, each at most once.
  kPhysmemBits,    // physmem_bits N
  kSection,        // section BYTES
  kProfile,        // profile default|v18|linux-6.1 (Op::flags holds the hmm::Profile)
  // Mirroring (docs/mirror.md). Field use: mirror: device, pid; unmirror:
  // mirror; get_pfns, dread, snapshot: mirror, addr, len (npages); hmm_fault:
  // also prot (kProtWrite set: a write fault); range_done, commit: range;
  // dwrite: mirror, addr, data (whole pages).
  kMirror,         // mirror DEVICE PID                  -> mirror id
  kUnmirror,       // unmirror MIRROR
  kGetPfns,        // get_pfns MIRROR ADDR NPAGES        -> range id
  kHmmFault,       // hmm_fault MIRROR ADDR NPAGES r|w   -> range id
  kRangeDone,      // range_done RANGE                   -> 0|1 (valid)
  kCommit,         // commit RANGE                       -> 0|1 (the dummy device's commit)
  kDread,          // dread MIRROR ADDR NPAGES           -> ok cpages=N faults=N DATA
  kDwrite,         // dwrite MIRROR ADDR DATA            -> ok cpages=N faults=N
  kSnapshot,       // snapshot MIRROR ADDR NPAGES        -> ok cpages=N DATA (a byte per page)
  kDfault,         // dfault MIRROR ADDR NPAGES r|w      -> ok (a dread/dwrite's fault alone)
  // Migration (docs/migrate.md): the dummy device's MIGRATE_TO_DEV, MIGRATE_TO_SYS,
  // RELEASE and FLAGS. Field use: mirror; migrate_*: addr, len (npages); dflags: flags.
  kMigrateToDev,   // migrate_to_dev MIRROR ADDR NPAGES  -> ok cpages=N DATA
  kMigrateToSys,   // migrate_to_sys MIRROR ADDR NPAGES  -> ok cpages=N
  kRelease,        // release MIRROR
  kDflags,         // dflags MIRROR FLAGS                (HMM_DMIRROR_FLAGS: fail_alloc)
};

// The last kind: tables indexed by kind have kLastOpKind + 1 entries.
constexpr OpKind kLastOpKind = OpKind::kDflags;

// Bounds of a `ram` line (the impl allocates the struct pages and the data up front).
constexpr uint64_t kMinTraceRamPages = kMinRamPages;
constexpr uint64_t kMaxTraceRamPages = kMaxRamPages;

// Whether an op kind is a set-up line (configures the kernels; no result).
constexpr bool IsSetupKind(OpKind k) {
  return k == OpKind::kRam || k == OpKind::kPhysmemBits || k == OpKind::kSection ||
         k == OpKind::kProfile;
}

// What a line may assert about its result ("-> ..." in a .hmm file).
struct Expect {
  Errno err = Errno::kOk;
  std::optional<uint64_t> value;             // pid, address or pin id
  std::optional<std::vector<uint8_t>> data;  // bytes read
  std::optional<uint64_t> cpages;            // dummy-device ioctls: "cpages=N"
  std::optional<uint64_t> faults;            // dummy-device ioctls: "faults=N"
};

struct Op {
  OpKind kind = OpKind::kCreateProcess;
  uint64_t pid = 0;
  uint64_t addr = 0;      // addr, old_addr
  uint64_t len = 0;       // len, old_len, npages (pin)
  uint64_t new_len = 0;   // mremap
  uint64_t new_addr = 0;  // mremap with kMremapFixed
  uint32_t prot = 0;
  uint32_t flags = 0;     // MapFlags, MremapFlags, hmm::Profile or dflags' kDmirrorFlag*
  uint64_t pin = 0;       // unpin
  uint64_t devmem = 0;    // devmem_remove, devpage_alloc, page_frees
  uint64_t pfn = 0;       // devpage_put, devmap
  uint64_t device = 0;    // devmem_add, mirror
  uint64_t mirror = 0;    // unmirror, get_pfns, hmm_fault, dread, dwrite, snapshot, migration
  uint64_t range = 0;     // range_done, commit
  std::vector<uint8_t> data;  // write
  std::optional<Expect> expect;
  int line = 0;           // source line in a .hmm file; 0 when generated
};

// The result of one operation on one side (model or impl).
struct OpResult {
  Errno err = Errno::kOk;
  uint64_t value = 0;          // pid, address, pin, mirror or range id, or 0|1
  std::vector<uint8_t> data;   // read, dread, snapshot, migrate_to_dev
  uint64_t cpages = 0;         // dread, dwrite, snapshot, migrate_to_dev, migrate_to_sys
  uint64_t faults = 0;         // dread, dwrite, snapshot

  bool operator==(const OpResult& o) const {
    return err == o.err && value == o.value && data == o.data && cpages == o.cpages &&
           faults == o.faults;
  }
};

}  // namespace hmm::props

#endif  // HMMREF_PROPS_OP_H_
