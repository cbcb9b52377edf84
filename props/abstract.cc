// File: props/abstract.cc

#include "props/abstract.h"

#include <functional>
#include <map>
#include <set>
#include <algorithm>

namespace hmm::props {
namespace {

std::string ProtString(uint32_t prot) {
  std::string s;
  s += (prot & kProtRead) ? 'r' : '-';
  s += (prot & kProtWrite) ? 'w' : '-';
  return s;
}

std::string Describe(const model::Pte& pte) {
  if (pte.device) return "devpriv " + Hex(pte.device_pfn) + (pte.write ? " w" : " r");
  std::string target = pte.zero ? "zero" : "page#" + std::to_string(pte.page);
  return target + (pte.write ? " rw" : " r");
}

std::string Describe(const model::Vma& vma) {
  std::string s = "[" + Hex(VpnToAddr(vma.start)) + "," + Hex(VpnToAddr(vma.end)) + ") " +
                  ProtString(vma.prot);
  if (vma.shared) s += " shared obj#" + std::to_string(vma.object) + "+" + std::to_string(vma.pgoff);
  return s;
}

std::string Describe(const model::Page& page) {
  std::string s = std::to_string(page.bytes.size()) + " non-zero bytes";
  if (!page.bytes.empty()) {
    s += ", first at +" + Hex(page.bytes.begin()->first) + "=" + Hex(page.bytes.begin()->second);
  }
  return s;
}

std::string Describe(const std::vector<model::PageId>& pages) {
  std::string s = "{";
  for (size_t i = 0; i < pages.size(); ++i) s += (i ? "," : "") + std::string("page#") + std::to_string(pages[i]);
  return s + "}";
}

std::string Describe(const model::SharedObject& obj) {
  std::string s = "{";
  for (const auto& [pgoff, page] : obj.pages) {
    s += (s.size() > 1 ? "," : "") + std::to_string(pgoff) + ":page#" + std::to_string(page);
  }
  return s + "}";
}

std::string Describe(const model::Resource& r) {
  return "[" + Hex(r.start) + "," + Hex(r.end) + ") " +
         (r.device ? "device-private devmem " + std::to_string(r.devmem)
                   : std::string(r.boot ? "System RAM (boot)" : "System RAM"));
}

std::string Describe(const model::Devmem& d) {
  std::string s = "device " + std::to_string(d.device.value) +
                  (d.dmirror_chunk ? " (dmirror chunk)" : "") + " pfns [" + Hex(d.first_pfn) +
                  "," + Hex(d.first_pfn + d.npages) + ") pages {";
  bool first = true;
  for (const auto& [pfn, page] : d.pages) {
    s += (first ? "" : ", ") + Hex(pfn) + (page.held ? " held" : " free") + " alloc#" +
         std::to_string(page.allocations);
    if (!page.data.bytes.empty()) s += " data " + Describe(page.data);
    first = false;
  }
  return s + "}";
}

std::string Describe(const model::DeviceEvent& e) {
  if (e.kind == model::DeviceEvent::kPageFree) {
    return "page_free(devmem " + std::to_string(e.devmem) + ", pfn " + Hex(e.pfn) + ")";
  }
  return "fault(devmem " + std::to_string(e.devmem) + ", pfn " + Hex(e.pfn) + ", pid " +
         std::to_string(e.pid) + ", addr " + Hex(e.addr) + ")";
}

std::string Describe(const model::HmmPfn& e) {
  static const char* const kNames[] = {"VALID", "READ", "WRITE", "ERROR", "EMPTY", "SPECIAL",
                                       "DEVICE"};
  std::string s;
  for (unsigned bit = 0; bit < kHmmPfnShift; ++bit) {
    if ((e.flags >> bit) & 1) s += (s.empty() ? "" : "|") + std::string(kNames[bit]);
  }
  if (s.empty()) s = "0";
  if ((e.flags & kHmmPfnValid) == 0) return s;
  if ((e.flags & kHmmPfnDeviceUnaddressable) != 0) return s + " " + Hex(e.device_pfn);
  return s + (e.zero ? " zero" : " page#" + std::to_string(e.page));
}

std::string Describe(const model::Range& r) {
  std::string s = "mirror " + std::to_string(r.mirror) + " [" + Hex(VpnToAddr(r.start)) + "," +
                  Hex(VpnToAddr(r.end)) + ") " + (r.valid ? "valid" : "invalid") + " {";
  for (size_t i = 0; i < r.pfns.size(); ++i) s += (i ? ", " : "") + Describe(r.pfns[i]);
  return s + "}";
}

// Everything of a mirror but its page table.
std::string DescribeMirrorOwner(const model::Mirror& m) {
  return "device " + std::to_string(m.device.value) + " pid " + std::to_string(m.pid.value) +
         " flags " + Hex(m.flags);
}

std::string Describe(const Config& c) {
  return "ram " + std::to_string(c.ram_pages) + " physmem_bits " +
         std::to_string(c.max_physmem_bits) + " section " + Hex(c.section_bytes) + " profile " +
         (c.profile == Profile::kV18 ? "v18" : "default");
}

// The keys of m and of i, each once, in order.
template <typename K, typename V>
std::set<K> KeysOfEither(const std::map<K, V>& m, const std::map<K, V>& i) {
  std::set<K> keys;
  for (const auto& kv : m) keys.insert(kv.first);
  for (const auto& kv : i) keys.insert(kv.first);
  return keys;
}

// Collects differences between two maps with the same key type; `what` names
// the key for a line ("pid 1 vpn 0x10003").
class Differ {
 public:
  explicit Differ(size_t max_lines) : max_lines_(max_lines) {}

  template <typename K, typename V>
  void Maps(const std::map<K, V>& m, const std::map<K, V>& i,
            const std::function<std::string(const K&)>& what) {
    for (const K& k : KeysOfEither(m, i)) {
      auto mi = m.find(k);
      auto ii = i.find(k);
      if (mi != m.end() && ii != i.end() && mi->second == ii->second) continue;
      Add(what(k) + ": model=" + (mi == m.end() ? "absent" : Describe(mi->second)) +
          " impl=" + (ii == i.end() ? "absent" : Describe(ii->second)));
    }
  }

  // The event logs: the first position where they differ.
  void Events(const std::vector<model::DeviceEvent>& m, const std::vector<model::DeviceEvent>& i) {
    for (size_t n = 0; n < std::max(m.size(), i.size()); ++n) {
      if (n < m.size() && n < i.size() && m[n] == i[n]) continue;
      Add("event #" + std::to_string(n + 1) + ": model=" +
          (n < m.size() ? Describe(m[n]) : std::string("none")) +
          " impl=" + (n < i.size() ? Describe(i[n]) : std::string("none")));
      return;
    }
  }

  void Add(std::string line) {
    if (lines_.size() < max_lines_) lines_.push_back(std::move(line));
    else ++dropped_;
  }

  std::vector<std::string> Take() {
    if (dropped_ > 0) lines_.push_back("... and " + std::to_string(dropped_) + " more");
    return std::move(lines_);
  }

 private:
  size_t max_lines_;
  size_t dropped_ = 0;
  std::vector<std::string> lines_;
};

model::Page PageFromBytes(const std::vector<uint8_t>& data) {
  model::Page page;
  for (size_t off = 0; off < data.size(); ++off) {
    if (data[off] == 0) continue;
    page.bytes.emplace_hint(page.bytes.end(), static_cast<uint16_t>(off), data[off]);  // in order
  }
  return page;
}

// A PTE, or a mirror's device mapping (same shape).
model::Pte PteFromInfo(const impl::PteInfo& p) {
  model::Pte pte;
  pte.zero = p.zero;
  pte.page = p.zero || p.device ? 0 : p.pfn;
  pte.write = p.write;
  pte.device = p.device;
  pte.device_pfn = p.device ? p.pfn : 0;
  return pte;
}

void AbstractProcess(const impl::Kernel& kernel, Pid pid, model::Process* proc) {
  for (const impl::VmaInfo& v : kernel.Vmas(pid)) {
    model::Vma vma;  // the linux-6.1 fields stay empty: the impl has no such profile
    vma.start = AddrToVpn(v.start);
    vma.end = AddrToVpn(v.end);
    vma.prot = v.prot;
    vma.shared = v.shared;
    vma.object = v.shared ? v.object : 0;
    vma.pgoff = v.shared ? v.pgoff : 0;
    proc->vmas.emplace(vma.start, vma);
  }
  for (const impl::PteInfo& p : kernel.Ptes(pid)) proc->ptes.emplace(Vpn(p.vpn), PteFromInfo(p));
}

// An hmm_pfn_t (pfn << kHmmPfnShift | flags) as the model's entry: the target
// only when VALID (the zero page by its pfn, a device page by DEVICE_UNADDRESSABLE).
model::HmmPfn HmmPfnFromRaw(uint64_t raw, uint64_t zero_pfn) {
  model::HmmPfn e;
  e.flags = raw & kHmmPfnFlagMask;
  if ((e.flags & kHmmPfnValid) == 0) return e;
  const uint64_t pfn = raw >> kHmmPfnShift;
  if ((e.flags & kHmmPfnDeviceUnaddressable) != 0) {
    e.device_pfn = pfn;
  } else if (pfn == zero_pfn) {
    e.zero = true;
  } else {
    e.page = pfn;
  }
  return e;
}

void AbstractMirrors(const impl::Kernel& kernel, model::State* s) {
  s->next_mirror = s->next_range = 0;
  for (const impl::MirrorInfo& m : kernel.Mirrors()) {
    model::Mirror& mirror = s->mirrors[m.id];
    mirror.device = DeviceId(m.device);
    mirror.pid = Pid(m.pid);
    mirror.flags = m.flags;
    for (const impl::PteInfo& p : m.pt) mirror.pt.emplace(Vpn(p.vpn), PteFromInfo(p));
  }
  const uint64_t zero_pfn = kernel.ZeroPfn();
  for (const impl::RangeInfo& r : kernel.Ranges()) {
    model::Range& range = s->ranges[r.id];
    range.mirror = r.mirror;
    range.start = Vpn(r.start_vpn);
    range.end = Vpn(r.end_vpn);
    range.valid = r.valid;
    for (uint64_t raw : r.pfns) range.pfns.push_back(HmmPfnFromRaw(raw, zero_pfn));
  }
}

void AbstractDevices(const impl::Kernel& kernel, model::State* s) {
  s->config = kernel.config();
  s->next_devmem = 0;
  for (const impl::ResourceInfo& r : kernel.Resources()) {
    s->resources.emplace(r.start, model::Resource{r.start, r.end, r.device, r.boot, r.devmem});
  }
  for (const impl::DevmemInfo& d : kernel.Devmems()) {
    model::Devmem& devmem = s->devmems[d.id];
    devmem.device = DeviceId(d.device);
    devmem.first_pfn = d.first_pfn;
    devmem.npages = d.npages;
    devmem.dmirror_chunk = d.dmirror_chunk;
    for (const impl::DevicePageInfo& p : d.pages) {
      devmem.pages.emplace(
          p.pfn, model::DevicePage{p.held, p.allocations, PageFromBytes(kernel.DevicePageData(p.pfn))});
    }
  }
  for (const impl::DeviceEventInfo& e : kernel.DeviceEvents()) {
    model::DeviceEvent event;
    event.kind = e.fault ? model::DeviceEvent::kFault : model::DeviceEvent::kPageFree;
    event.devmem = e.devmem;
    event.pfn = e.pfn;
    event.pid = e.pid;
    event.addr = e.addr;
    s->events.push_back(event);
  }
}

// Mirrors: who each belongs to and its flags, then its device page table
// entry by entry.
void DiffMirrors(const model::State& m, const model::State& i, Differ* d) {
  for (uint64_t id : KeysOfEither(m.mirrors, i.mirrors)) {
    auto mm = m.mirrors.find(id);
    auto im = i.mirrors.find(id);
    const std::string who = "mirror " + std::to_string(id);
    if (mm == m.mirrors.end() || im == i.mirrors.end()) {
      d->Add(who + ": model=" + (mm == m.mirrors.end() ? "absent" : DescribeMirrorOwner(mm->second)) +
             " impl=" + (im == i.mirrors.end() ? "absent" : DescribeMirrorOwner(im->second)));
      continue;
    }
    if (!(mm->second.device == im->second.device && mm->second.pid == im->second.pid &&
          mm->second.flags == im->second.flags)) {
      d->Add(who + ": model=" + DescribeMirrorOwner(mm->second) +
             " impl=" + DescribeMirrorOwner(im->second));
    }
    d->Maps<Vpn, model::Pte>(mm->second.pt, im->second.pt,
                             [&](const Vpn& v) { return who + " pt at " + Hex(VpnToAddr(v)); });
  }
}

}  // namespace

model::State Abstract(const impl::Kernel& kernel) {
  model::State s;
  s.next_pid = s.next_pin = s.next_page = s.next_object = 0;
  for (Pid pid : kernel.Pids()) AbstractProcess(kernel, pid, &s.procs[pid]);
  for (uint64_t pfn : kernel.PagesInUse()) s.pages.emplace(pfn, PageFromBytes(kernel.PageData(pfn)));
  for (uint64_t obj : kernel.Objects()) {
    model::SharedObject& o = s.objects[obj];
    for (const auto& [pgoff, pfn] : kernel.ObjectPages(obj)) o.pages.emplace(pgoff, pfn);
  }
  for (const auto& [pin, pfns] : kernel.Pins()) {
    s.pins.emplace(pin, std::vector<model::PageId>(pfns.begin(), pfns.end()));
  }
  AbstractDevices(kernel, &s);
  AbstractMirrors(kernel, &s);
  return s;
}

std::vector<std::string> DiffStates(const model::State& m, const model::State& i, size_t max_lines) {
  Differ d(max_lines);
  for (Pid pid : KeysOfEither(m.procs, i.procs)) {
    auto mp = m.procs.find(pid);
    auto ip = i.procs.find(pid);
    std::string who = "pid " + std::to_string(pid.value);
    if (mp == m.procs.end() || ip == i.procs.end()) {
      d.Add(who + ": model=" + (mp == m.procs.end() ? "absent" : "live") +
            " impl=" + (ip == i.procs.end() ? "absent" : "live"));
      continue;
    }
    d.Maps<Vpn, model::Vma>(mp->second.vmas, ip->second.vmas,
                            [&](const Vpn& v) { return who + " vma at " + Hex(VpnToAddr(v)); });
    d.Maps<Vpn, model::Pte>(mp->second.ptes, ip->second.ptes,
                            [&](const Vpn& v) { return who + " pte at " + Hex(VpnToAddr(v)); });
  }
  d.Maps<model::PageId, model::Page>(m.pages, i.pages, [](const model::PageId& p) {
    return "page#" + std::to_string(p);
  });
  d.Maps<model::ObjectId, model::SharedObject>(m.objects, i.objects, [](const model::ObjectId& o) {
    return "obj#" + std::to_string(o);
  });
  d.Maps<PinId, std::vector<model::PageId>>(m.pins, i.pins, [](const PinId& p) {
    return "pin " + std::to_string(p.value);
  });
  if (!(m.config == i.config)) d.Add("config: model=" + Describe(m.config) + " impl=" + Describe(i.config));
  d.Maps<uint64_t, model::Resource>(m.resources, i.resources, [](const uint64_t& start) {
    return "resource at " + Hex(start);
  });
  d.Maps<uint64_t, model::Devmem>(m.devmems, i.devmems, [](const uint64_t& id) {
    return "devmem " + std::to_string(id);
  });
  d.Events(m.events, i.events);
  DiffMirrors(m, i, &d);
  d.Maps<uint64_t, model::Range>(m.ranges, i.ranges, [](const uint64_t& id) {
    return "range " + std::to_string(id);
  });
  return d.Take();
}

}  // namespace hmm::props
