// File: solver/lemma.cc
//
// The registry: every *_lemmas.cc contributes LemmaWithControl entries; the two
// lists are built once, in a stable order, from the same entries, so lemma i
// and control i always pair up.

#include "solver/lemma.h"

#include <chrono>
#include <exception>

#include <utility>

#include "solver/devmem_lemmas.h"
#include "solver/migrate_lemmas.h"
#include "solver/mirror_lemmas.h"
#include "solver/prove.h"
#include "solver/pte_lemmas.h"

namespace hmm::solver {
namespace {

const std::vector<LemmaWithControl>& Registry() {
  static const auto* entries = [] {
    auto* out = new std::vector<LemmaWithControl>(PteLemmas());
    for (LemmaWithControl& e : DevmemLemmas()) out->push_back(std::move(e));
    for (LemmaWithControl& e : MirrorLemmas()) out->push_back(std::move(e));
    for (LemmaWithControl& e : MirrorOrderLemmas()) out->push_back(std::move(e));
    for (LemmaWithControl& e : MigrateLemmas()) out->push_back(std::move(e));
    return out;
  }();
  return *entries;
}

}  // namespace

const char* LemmaStatusWord(LemmaStatus s) {
  switch (s) {
    case LemmaStatus::kProved:
      return "proved";
    case LemmaStatus::kFailed:
      return "FAILED";
    case LemmaStatus::kUnknown:
      return "unknown";
    case LemmaStatus::kError:
      return "error";
  }
  return "error";
}

bool HasWitness(const LemmaResult& r) {
  return r.status == LemmaStatus::kProved && r.detail.rfind("witness", 0) == 0;
}

LemmaResult RunLemma(const Lemma& lemma) {
  auto start = std::chrono::steady_clock::now();
  LemmaResult result;
  try {
    result = lemma.run();
  } catch (const std::exception& e) {
    result.status = LemmaStatus::kError;
    result.detail = e.what();
  }
  result.name = lemma.name;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

const char* LemmaStatusName(LemmaStatus s) {
  switch (s) {
    case LemmaStatus::kProved:
      return "kProved";
    case LemmaStatus::kFailed:
      return "kFailed";
    case LemmaStatus::kUnknown:
      return "kUnknown";
    case LemmaStatus::kError:
      return "kError";
  }
  return "kInvalidLemmaStatus";
}

const std::vector<Lemma>& AllLemmas() {
  static const auto* lemmas = [] {
    auto* out = new std::vector<Lemma>;
    for (const LemmaWithControl& e : Registry()) out->push_back(e.lemma);
    return out;
  }();
  return *lemmas;
}

const std::vector<Lemma>& NegativeControls() {
  static const auto* controls = [] {
    auto* out = new std::vector<Lemma>;
    for (const LemmaWithControl& e : Registry()) out->push_back(e.control);
    return out;
  }();
  return *controls;
}

}  // namespace hmm::solver
