// File: oracle/guest_runner.cc
//
// hmmref's trace runner inside the QEMU guest (docs/oracle.md). It reads a
// lowered trace file (numbers only, written by `hmmref oracle lower`) and
// replays it with real system calls on Linux 6.1 and its HMM test driver
// (lib/test_hmm.c, /dev/hmm_dmirror0..3), printing one result line per trace
// line on the results channel (the guest's second serial port).
//
// Process model: this program is the coordinator and never executes a trace
// line itself. Every trace process is a real process (a "worker"): `spawn`
// forks a fresh worker from the coordinator, `fork` makes a worker fork
// itself. Each trace pid P has two pipes created up front, before any worker
// exists (the guest kernel has no networking, so no fd passing): the
// coordinator writes P's lines on one and reads P's answers on the other.
// Built statically (g++ -static) against the kernel source's
// lib/test_hmm_uapi.h; nothing from the kernel is copied here.

#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "guest_util.h"
#include "test_hmm_uapi.h"

namespace {

using guest::DecodeData;
using guest::EncodeData;
using guest::Err;
using guest::Hex;
using guest::LineReader;
using guest::Num;
using guest::Split;
using guest::WriteAll;

constexpr uint64_t kPage = 4096;
constexpr int kLineTimeoutMs = 60000;  // one line, TCG included

// ---------- CPU accesses that may fault ----------

sigjmp_buf g_jmp;
volatile sig_atomic_t g_catching = 0;
volatile size_t g_done = 0;
volatile sig_atomic_t g_signal = 0;  // the signal of the last caught fault

void OnFault(int sig) {
  g_signal = sig;
  if (g_catching) siglongjmp(g_jmp, 1);
  signal(sig, SIG_DFL);
  raise(sig);
}

// Copies n bytes one at a time; returns true, or false at the first faulting
// byte (the bytes before it are copied: a store sequence, like the model's).
bool CopyCatching(volatile uint8_t* dst, const volatile uint8_t* src, size_t n) {
  g_done = 0;
  if (sigsetjmp(g_jmp, 1) != 0) {
    g_catching = 0;
    return false;
  }
  g_catching = 1;
  for (size_t i = 0; i < n; ++i) {
    dst[i] = src[i];
    g_done = i + 1;
  }
  g_catching = 0;
  return true;
}

// ---------- the worker: one trace process ----------

struct Pipes {
  int cmd[2];  // coordinator writes [1], worker reads [0]
  int res[2];  // worker writes [1], coordinator reads [0]
};

std::vector<Pipes> g_pipes;  // indexed by trace pid

// A buffer for the device ioctls: mmap'ed (lazily populated) unless absurdly
// large, in which case one page stands in and the kernel reports the error.
struct Buffer {
  uint8_t* p = nullptr;
  size_t n = 0;
  explicit Buffer(uint64_t bytes) {
    n = (bytes == 0 || bytes > (uint64_t{256} << 20)) ? kPage : bytes;
    void* m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    p = m == MAP_FAILED ? nullptr : static_cast<uint8_t*>(m);
  }
  ~Buffer() {
    if (p != nullptr) munmap(p, n);
  }
};

class Worker {
 public:
  explicit Worker(uint64_t pid) : pid_(pid) {}

  [[noreturn]] void Loop() {
    LineReader in(g_pipes[pid_].cmd[0]);
    for (;;) {
      std::string line;
      bool timed_out;
      if (!in.Read(&line, -1, &timed_out)) _exit(0);
      std::string answer = Execute(Split(line));
      WriteAll(g_pipes[pid_].res[1], answer + "\n");
    }
  }

 private:
  std::string Execute(const std::vector<std::string>& w) {
    if (w.empty()) return "err EINVAL";
    const std::string& v = w[0];
    auto arg = [&](size_t i) { return i < w.size() ? Num(w[i]) : 0; };
    if (v == "exit") _exit(0);
    if (v == "fork") return Fork(arg(1));
    if (v == "mmap") {
      void* r = mmap(reinterpret_cast<void*>(arg(1)), arg(2), static_cast<int>(arg(3)),
                     static_cast<int>(arg(4)), -1, 0);
      return r == MAP_FAILED ? Err(errno) : "ok v=" + Hex(reinterpret_cast<uint64_t>(r));
    }
    if (v == "mremap") {
      void* r = mremap(reinterpret_cast<void*>(arg(1)), arg(2), arg(3), static_cast<int>(arg(4)),
                       reinterpret_cast<void*>(arg(5)));
      return r == MAP_FAILED ? Err(errno) : "ok v=" + Hex(reinterpret_cast<uint64_t>(r));
    }
    if (v == "munmap") return Status(munmap(reinterpret_cast<void*>(arg(1)), arg(2)));
    if (v == "mprotect") {
      return Status(mprotect(reinterpret_cast<void*>(arg(1)), arg(2), static_cast<int>(arg(3))));
    }
    if (v == "madvise") {
      return Status(madvise(reinterpret_cast<void*>(arg(1)), arg(2), static_cast<int>(arg(3))));
    }
    if (v == "read") return Read(arg(1), arg(2));
    if (v == "write") return Write(arg(1), w.size() > 2 ? w[2] : "");
    if (v == "mirror") return Mirror(arg(1), arg(2));
    if (v == "unmirror") return Unmirror(arg(1));
    if (v == "dread" || v == "dwrite" || v == "snapshot" || v == "migrate_to_dev" ||
        v == "migrate_to_sys" || v == "release") {
      return Ioctl(v, arg(1), arg(2), arg(3), w.size() > 4 ? w[4] : "");
    }
    return "err ENOSYS";
  }

  static std::string Status(int r) { return r == 0 ? "ok" : Err(errno); }

  std::string Fork(uint64_t child) {
    if (child >= g_pipes.size()) return "err EINVAL";
    pid_t r = fork();
    if (r < 0) return Err(errno);
    if (r == 0) {
      // The child's descriptors of the parent's mirrors would keep the
      // parent's files open past its unmirror: close them (the count drops,
      // the parent's mirror stays).
      for (auto& m : mirrors_) close(m.second);
      mirrors_.clear();
      pid_ = child;
      Loop();
    }
    return "ok pid=" + std::to_string(r);
  }

  std::string Read(uint64_t addr, uint64_t len) {
    if (len > (uint64_t{64} << 20)) return "err E2BIG";
    std::vector<uint8_t> buf(len);
    if (!CopyCatching(buf.data(), reinterpret_cast<const volatile uint8_t*>(addr), len)) {
      return std::string("err EFAULT sig=") + (g_signal == SIGBUS ? "SIGBUS" : "SIGSEGV");
    }
    return "ok data=" + EncodeData(buf.data(), buf.size());
  }

  std::string Write(uint64_t addr, const std::string& data) {
    std::vector<uint8_t> bytes = DecodeData(data);
    if (!CopyCatching(reinterpret_cast<volatile uint8_t*>(addr), bytes.data(), bytes.size())) {
      return "err EFAULT done=" + std::to_string(g_done) +
             (g_signal == SIGBUS ? " sig=SIGBUS" : " sig=SIGSEGV");
    }
    return "ok";
  }

  std::string Mirror(uint64_t id, uint64_t device) {
    std::string path = "/dev/hmm_dmirror" + std::to_string(device);
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return Err(errno);
    mirrors_[id] = fd;
    return "ok";
  }

  std::string Unmirror(uint64_t id) {
    auto it = mirrors_.find(id);
    if (it == mirrors_.end()) return "err EBADF";
    int r = close(it->second);
    mirrors_.erase(it);
    return Status(r);
  }

  std::string Ioctl(const std::string& verb, uint64_t id, uint64_t addr, uint64_t npages,
                    const std::string& data) {
    auto it = mirrors_.find(id);
    if (it == mirrors_.end()) return "err EBADF";
    const bool snapshot = verb == "snapshot";
    const bool no_data = verb == "dwrite" || verb == "migrate_to_sys" || verb == "release";
    uint64_t bytes = snapshot ? npages : npages * kPage;
    if (npages != 0 && bytes / npages != (snapshot ? 1 : kPage)) bytes = ~uint64_t{0};
    Buffer buf(bytes);
    if (buf.p == nullptr) return "err ENOMEM";
    if (verb == "dwrite") {
      std::vector<uint8_t> in = DecodeData(data);
      std::memcpy(buf.p, in.data(), std::min(in.size(), buf.n));
    }
    hmm_dmirror_cmd cmd = {};
    cmd.addr = addr;
    cmd.ptr = reinterpret_cast<uint64_t>(buf.p);
    cmd.npages = npages;
    static const std::map<std::string, unsigned long> kRequests = {
        {"dread", HMM_DMIRROR_READ},
        {"dwrite", HMM_DMIRROR_WRITE},
        {"snapshot", HMM_DMIRROR_SNAPSHOT},
        {"migrate_to_dev", HMM_DMIRROR_MIGRATE_TO_DEV},
        {"migrate_to_sys", HMM_DMIRROR_MIGRATE_TO_SYS},
        {"release", HMM_DMIRROR_RELEASE}};
    if (ioctl(it->second, kRequests.at(verb), &cmd) != 0) return Err(errno);
    std::string out = "ok cpages=" + std::to_string(cmd.cpages);
    if (!snapshot) out += " faults=" + std::to_string(cmd.faults);
    if (!no_data) out += " data=" + EncodeData(buf.p, std::min<uint64_t>(bytes, buf.n));
    return out;
  }

  uint64_t pid_;
  std::map<uint64_t, int> mirrors_;  // mirror id -> fd
};

// ---------- the coordinator ----------

// Whether a real process still runs (exists and is not a zombie).
bool Running(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return false;
  char buf[512] = {};
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  const char* paren = std::strrchr(buf, ')');
  if (n == 0 || paren == nullptr || paren[1] == '\0') return false;
  return paren[2] != 'Z' && paren[2] != 'X';
}

pid_t g_waiting_on = 0;
bool WaitedAlive() { return Running(g_waiting_on); }

class Coordinator {
 public:
  Coordinator(int out, int kmsg) : out_(out), kmsg_(kmsg) {}

  // Runs the lines of one trace (after its "trace NAME MAXPID" header).
  void RunTrace(const std::string& name, uint64_t maxpid, const std::vector<std::string>& lines) {
    Emit("T " + name);
    g_pipes.assign(maxpid + 1, Pipes{});
    for (auto& p : g_pipes) {
      if (pipe(p.cmd) != 0 || pipe(p.res) != 0) {
        Emit("A 0 pipe: " + std::string(std::strerror(errno)));
        return;
      }
    }
    readers_.clear();
    real_.clear();
    for (size_t i = 0; i < g_pipes.size(); ++i) readers_.emplace_back(g_pipes[i].res[0]);
    for (const std::string& text : lines) {
      std::vector<std::string> w = Split(text);
      if (w.size() < 3) continue;
      std::string line = w[0];
      uint64_t pid = Num(w[1]);
      std::string rest = text.substr(text.find(w[2], w[0].size() + w[1].size() + 1));
      std::string result;
      if (pid == 0 || pid >= g_pipes.size()) {
        result = "err EINVAL";
      } else if (w[2] == "spawn") {
        result = Spawn(pid);
      } else if (real_.count(pid) == 0) {
        result = "err ESRCH";
      } else if (!Send(pid, rest, w[2], &result)) {
        Emit("R " + line + " " + result);
        Emit("A " + line + " worker " + std::to_string(pid) + ": " + result);
        break;
      }
      if (w[2] == "fork" && result.rfind("ok pid=", 0) == 0) {
        real_[Num(w[3])] = static_cast<pid_t>(Num(result.substr(7)));
        result = "ok";
      }
      Emit("R " + line + " " + result);
      DrainKmsg(line);
    }
    KillAll();
    Emit("E " + name);
  }

 private:
  std::string Spawn(uint64_t pid) {
    pid_t r = fork();
    if (r < 0) return Err(errno);
    if (r == 0) {
      for (auto& p : g_pipes) {
        close(p.cmd[1]);
        close(p.res[0]);
      }
      close(out_);
      if (kmsg_ >= 0) close(kmsg_);
      Worker(pid).Loop();
    }
    real_[pid] = r;
    return "ok";
  }

  // Sends a line to pid's worker and reads its answer. `exit` has none: it
  // waits until the process is gone (its memory released). False when the
  // worker died or hung (result says which).
  bool Send(uint64_t pid, const std::string& rest, const std::string& verb, std::string* result) {
    if (!WriteAll(g_pipes[pid].cmd[1], rest + "\n")) {
      *result = "died";
      return false;
    }
    g_waiting_on = real_[pid];
    if (verb == "exit") {
      for (int i = 0; i < kLineTimeoutMs && Running(real_[pid]); ++i) usleep(1000);
      if (Running(real_[pid])) {
        *result = "timeout";
        return false;
      }
      real_.erase(pid);
      *result = "ok";
      return true;
    }
    bool timed_out = false;
    readers_[pid].alive_ = WaitedAlive;
    if (!readers_[pid].Read(result, kLineTimeoutMs, &timed_out)) {
      *result = Running(real_[pid]) ? "timeout" : "died";
      return false;
    }
    return true;
  }

  void KillAll() {
    for (auto& r : real_) kill(r.second, SIGKILL);
    for (auto& r : real_) {
      for (int i = 0; i < 5000 && Running(r.second); ++i) usleep(1000);
    }
    real_.clear();
    for (auto& p : g_pipes) {
      for (int fd : {p.cmd[0], p.cmd[1], p.res[0], p.res[1]}) close(fd);
    }
    g_pipes.clear();
  }

  // Reports kernel warnings, bugs and errors logged since the last line.
  void DrainKmsg(const std::string& line) {
    if (kmsg_ < 0) return;
    char rec[8192];
    for (;;) {
      ssize_t n = read(kmsg_, rec, sizeof rec - 1);
      if (n < 0 && errno == EPIPE) continue;  // overwritten records
      if (n <= 0) return;
      rec[n] = '\0';
      int level = std::atoi(rec) & 7;
      const char* msg = std::strchr(rec, ';');
      if (msg == nullptr) continue;
      std::string text(msg + 1, std::strcspn(msg + 1, "\n"));
      if (level <= 3 || text.find("WARNING") != std::string::npos ||
          text.find("BUG") != std::string::npos) {
        Emit("K " + line + " " + text);
      }
    }
  }

  void Emit(const std::string& s) { WriteAll(out_, s + "\n"); }

  int out_;
  int kmsg_;
  std::vector<LineReader> readers_;
  std::map<uint64_t, pid_t> real_;  // trace pid -> real pid, while it runs
};

int OpenOutput(const char* path) {
  int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return -1;
  termios t;
  if (tcgetattr(fd, &t) == 0) {
    cfmakeraw(&t);
    tcsetattr(fd, TCSANOW, &t);
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: runner OUTPUT LOWERED_FILE\n");
    return 2;
  }
  int out = std::strcmp(argv[1], "-") == 0 ? dup(1) : OpenOutput(argv[1]);
  if (out < 0) {
    std::fprintf(stderr, "runner: %s: %s\n", argv[1], std::strerror(errno));
    return 2;
  }
  FILE* in = std::fopen(argv[2], "r");
  if (in == nullptr) {
    std::fprintf(stderr, "runner: %s: %s\n", argv[2], std::strerror(errno));
    return 2;
  }
  rlimit nofile = {65536, 65536};
  setrlimit(RLIMIT_NOFILE, &nofile);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  signal(SIGCHLD, SIG_IGN);  // every exited trace process is reaped at once
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {};
  sa.sa_handler = OnFault;
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
  int kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (kmsg >= 0) lseek(kmsg, 0, SEEK_END);

  Coordinator coordinator(out, kmsg);
  WriteAll(out, "@@HMMREF-ORACLE-BEGIN\n");
  std::string name;
  uint64_t maxpid = 0;
  std::vector<std::string> lines;
  char* buf = nullptr;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&buf, &cap, in)) > 0) {
    std::string text(buf, static_cast<size_t>(n));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    std::vector<std::string> w = Split(text);
    if (w.empty() || w[0][0] == '#') continue;
    if (w[0] == "trace" && w.size() == 3) {
      name = w[1];
      maxpid = Num(w[2]);
      lines.clear();
    } else if (w[0] == "end") {
      coordinator.RunTrace(name, maxpid, lines);
    } else {
      lines.push_back(text);
    }
  }
  std::free(buf);
  WriteAll(out, "@@HMMREF-ORACLE-END\n");
  return 0;
}
