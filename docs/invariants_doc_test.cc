// File: docs/invariants_doc_test.cc
//
// docs/invariants.md must have a row for every named model invariant (with its
// statement and kernel source as the code states them) and name every Z3
// lemma, so the traceability table cannot silently fall behind the code.

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "model/invariants.h"
#include "solver/lemma.h"

namespace hmm {
namespace {

std::string ReadDoc() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::ifstream in(std::string(srcdir ? srcdir : ".") + "/hmmref/docs/invariants.md");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(InvariantsDoc, HasARowForEveryModelInvariant) {
  const std::string doc = ReadDoc();
  ASSERT_FALSE(doc.empty());
  for (const model::InvariantInfo& inv : model::AllInvariants()) {
    const std::string row = "| " + std::string(inv.name) + " | " + inv.statement + " | " +
                            inv.source + " |";
    EXPECT_NE(doc.find(row), std::string::npos) << "docs/invariants.md lacks the row\n" << row;
  }
}

TEST(InvariantsDoc, NamesEveryLemmaAndItsInvariant) {
  const std::string doc = ReadDoc();
  for (const solver::Lemma& lemma : solver::AllLemmas()) {
    EXPECT_NE(doc.find(lemma.name), std::string::npos) << lemma.name;
    if (!lemma.invariant.empty()) {
      EXPECT_NE(doc.find("| " + lemma.invariant + " |"), std::string::npos) << lemma.invariant;
    }
  }
}

}  // namespace
}  // namespace hmm
