// File: props/trace_spec.cc
//
// The line table (props/trace_spec.h): one row per keyword.

#include "props/trace_spec.h"

namespace hmm::props::trace_spec {

bool ReturnsFaults(Returns r) {
  return r == Returns::kDmirrorRead || r == Returns::kDmirrorWrite || r == Returns::kSnapshot;
}

bool ReturnsIoctl(Returns r) {
  return ReturnsFaults(r) || r == Returns::kMigrateToDev || r == Returns::kMigrateToSys;
}

bool ReturnsValue(Returns r) {
  return r != Returns::kNothing && r != Returns::kBytes && !ReturnsIoctl(r);
}

bool ReturnsHex(Returns r) { return r == Returns::kAddr || r == Returns::kPfn; }

const std::vector<OpSpec>& Specs() {
  static const std::vector<OpSpec> kSpecs = {
      {OpKind::kCreateProcess, "process", "", Returns::kPid, 0, false, {}},
      {OpKind::kExit, "exit", "PID", Returns::kNothing, 0, false, {Arg::kPid}},
      {OpKind::kMmap, "mmap", "PID ADDR LEN PROT FLAGS", Returns::kAddr, 0, true,
       {Arg::kPid, Arg::kAddr, Arg::kLen, Arg::kProt, Arg::kMmapFlags}},
      {OpKind::kMunmap, "munmap", "PID ADDR LEN", Returns::kNothing, 0, false,
       {Arg::kPid, Arg::kAddr, Arg::kLen}},
      {OpKind::kMprotect, "mprotect", "PID ADDR LEN PROT", Returns::kNothing, 0, false,
       {Arg::kPid, Arg::kAddr, Arg::kLen, Arg::kProt}},
      {OpKind::kMadviseDontneed, "madvise", "PID ADDR LEN dontneed", Returns::kNothing, 0,
       false, {Arg::kPid, Arg::kAddr, Arg::kLen, Arg::kDontneed}},
      {OpKind::kRead, "read", "PID ADDR LEN", Returns::kBytes, 0, false,
       {Arg::kPid, Arg::kAddr, Arg::kLen}},
      {OpKind::kWrite, "write", "PID ADDR DATA", Returns::kNothing, 0, false,
       {Arg::kPid, Arg::kAddr, Arg::kData}},
      {OpKind::kPin, "pin", "PID ADDR NPAGES", Returns::kPinId, 0, false,
       {Arg::kPid, Arg::kAddr, Arg::kNpages}},
      {OpKind::kUnpin, "unpin", "PIN", Returns::kNothing, 0, false, {Arg::kPin}},
      {OpKind::kFork, "fork", "PID", Returns::kPid, 0, false, {Arg::kPid}},
      {OpKind::kMremap, "mremap", "PID OLD_ADDR OLD_LEN NEW_LEN FLAGS [NEW_ADDR]",
       Returns::kAddr, 1, false,
       {Arg::kPid, Arg::kAddr, Arg::kLen, Arg::kNewLen, Arg::kMremapFlags, Arg::kNewAddr}},
      // Device-private memory (docs/devmem.md).
      {OpKind::kDevmemAdd, "devmem_add", "DEVICE SIZE", Returns::kDevmemId, 0, false,
       {Arg::kDevice, Arg::kLen}},
      {OpKind::kDevmemRemove, "devmem_remove", "DEVMEM", Returns::kNothing, 0, false,
       {Arg::kDevmem}},
      {OpKind::kRamHotAdd, "ram_hotadd", "START SIZE", Returns::kNothing, 0, false,
       {Arg::kAddr, Arg::kLen}},
      {OpKind::kRamHotRemove, "ram_hotremove", "START SIZE", Returns::kNothing, 0, false,
       {Arg::kAddr, Arg::kLen}},
      {OpKind::kDevPageAlloc, "devpage_alloc", "DEVMEM", Returns::kPfn, 0, false,
       {Arg::kDevmem}},
      {OpKind::kDevPagePut, "devpage_put", "PFN", Returns::kNothing, 0, false, {Arg::kPfn}},
      {OpKind::kDevMap, "devmap", "PID ADDR PFN PROT", Returns::kNothing, 0, false,
       {Arg::kPid, Arg::kAddr, Arg::kPfn, Arg::kProt}},
      {OpKind::kPageFrees, "page_frees", "DEVMEM", Returns::kCount, 0, false, {Arg::kDevmem}},
      // Set-up lines (IsSetupKind): before every operation, each at most once.
      {OpKind::kRam, "ram", "PAGES", Returns::kNothing, 0, false, {Arg::kNpages}},
      {OpKind::kPhysmemBits, "physmem_bits", "N", Returns::kNothing, 0, false, {Arg::kNpages}},
      {OpKind::kSection, "section", "BYTES", Returns::kNothing, 0, false, {Arg::kLen}},
      {OpKind::kProfile, "profile", "default|v18|linux-6.1", Returns::kNothing, 0, false,
       {Arg::kProfile}},
      // Mirroring (docs/mirror.md): the kernel API, then the dummy device.
      {OpKind::kMirror, "mirror", "DEVICE PID", Returns::kMirrorId, 0, false,
       {Arg::kDevice, Arg::kPid}},
      {OpKind::kUnmirror, "unmirror", "MIRROR", Returns::kNothing, 0, false, {Arg::kMirror}},
      {OpKind::kGetPfns, "get_pfns", "MIRROR ADDR NPAGES", Returns::kRangeId, 0, false,
       {Arg::kMirror, Arg::kAddr, Arg::kNpages}},
      {OpKind::kHmmFault, "hmm_fault", "MIRROR ADDR NPAGES PROT", Returns::kRangeId, 0, false,
       {Arg::kMirror, Arg::kAddr, Arg::kNpages, Arg::kProt}},
      {OpKind::kRangeDone, "range_done", "RANGE", Returns::kValid, 0, false, {Arg::kRange}},
      {OpKind::kCommit, "commit", "RANGE", Returns::kValid, 0, false, {Arg::kRange}},
      {OpKind::kDread, "dread", "MIRROR ADDR NPAGES", Returns::kDmirrorRead, 0, false,
       {Arg::kMirror, Arg::kAddr, Arg::kNpages}},
      {OpKind::kDwrite, "dwrite", "MIRROR ADDR DATA", Returns::kDmirrorWrite, 0, false,
       {Arg::kMirror, Arg::kAddr, Arg::kData}},
      {OpKind::kSnapshot, "snapshot", "MIRROR ADDR NPAGES", Returns::kSnapshot, 0, false,
       {Arg::kMirror, Arg::kAddr, Arg::kNpages}},
      {OpKind::kDfault, "dfault", "MIRROR ADDR NPAGES PROT", Returns::kNothing, 0, false,
       {Arg::kMirror, Arg::kAddr, Arg::kNpages, Arg::kProt}},
      // Migration (docs/migrate.md): the dummy device's migration ioctls.
      {OpKind::kMigrateToDev, "migrate_to_dev", "MIRROR ADDR NPAGES", Returns::kMigrateToDev, 0,
       false, {Arg::kMirror, Arg::kAddr, Arg::kNpages}},
      {OpKind::kMigrateToSys, "migrate_to_sys", "MIRROR ADDR NPAGES", Returns::kMigrateToSys, 0,
       false, {Arg::kMirror, Arg::kAddr, Arg::kNpages}},
      {OpKind::kRelease, "release", "MIRROR", Returns::kNothing, 0, false, {Arg::kMirror}},
      {OpKind::kDflags, "dflags", "MIRROR FLAGS", Returns::kNothing, 0, false,
       {Arg::kMirror, Arg::kDmirrorFlags}},
  };
  return kSpecs;
}

const OpSpec* FindSpec(const std::string& name) {
  for (const OpSpec& s : Specs()) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

const OpSpec* SpecOf(OpKind kind) {
  for (const OpSpec& s : Specs()) {
    if (kind == s.kind) return &s;
  }
  return nullptr;
}

}  // namespace hmm::props::trace_spec
