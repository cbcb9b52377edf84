// File: cli/main.cc
//
// The hmmref program; see cli/commands.h and `hmmref --help`.
//
// Built a second time as //cli:hmmref_defects (with HMMREF_SEEDED_DEFECTS and
// the seeded-defect impl), where HMMREF_SEEDED_DEFECT=kCowNotBroken (any name
// of impl/defects.h) breaks the implementation on purpose: the way to see what
// a failing `check`, its counterexample and its report look like.

#include <unistd.h>

#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"

#ifdef HMMREF_SEEDED_DEFECTS
#include <cstdlib>

#include "impl/defects.h"

// Activates the defect HMMREF_SEEDED_DEFECT names. Returns false (after a
// one-line error) for a name that is no defect.
static bool SeedDefectFromEnvironment() {
  const char* name = std::getenv("HMMREF_SEEDED_DEFECT");
  if (name == nullptr || *name == '\0') return true;
  hmm::impl::Defect defect;
  if (!hmm::impl::ParseDefect(name, &defect)) {
    std::cerr << "hmmref: HMMREF_SEEDED_DEFECT names no defect: '" << name
              << "' (see impl/defects.h)\n";
    return false;
  }
  hmm::impl::SetSeededDefect(defect);
  std::cerr << "hmmref: seeded defect " << hmm::impl::DefectName(defect) << " is active\n";
  return true;
}
#endif

int main(int argc, char** argv) {
#ifdef HMMREF_SEEDED_DEFECTS
  if (!SeedDefectFromEnvironment()) return hmm::cli::kExitUsage;
#endif
  hmm::cli::Io io{std::cout, std::cerr, isatty(STDERR_FILENO) == 1};
  try {
    return hmm::cli::Main(std::vector<std::string>(argv + 1, argv + argc), io);
  } catch (const std::exception& e) {
    std::cerr << "hmmref: internal error: " << e.what() << "\n";
    return hmm::cli::kExitFailed;
  }
}
