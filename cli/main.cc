// File: cli/main.cc
//
// The hmmref program; see cli/commands.h and `hmmref --help`.

#include <unistd.h>

#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"

int main(int argc, char** argv) {
  hmm::cli::Io io{std::cout, std::cerr, isatty(STDERR_FILENO) == 1};
  try {
    return hmm::cli::Main(std::vector<std::string>(argv + 1, argv + argc), io);
  } catch (const std::exception& e) {
    std::cerr << "hmmref: internal error: " << e.what() << "\n";
    return hmm::cli::kExitFailed;
  }
}
