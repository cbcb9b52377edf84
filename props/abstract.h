// File: props/abstract.h
//
// The abstraction function (serval's #:abs): the impl's state read through
// impl::Kernel's introspection and expressed as a model::State, so that the
// runner can check Abstract(impl) == model after every step. Both sides are
// canonicalized first (model::Canonicalize), so page and object ids do not
// have to agree, only the sharing they describe.

#ifndef HMMREF_PROPS_ABSTRACT_H_
#define HMMREF_PROPS_ABSTRACT_H_

#include <cstddef>
#include <string>
#include <vector>

#include "impl/kernel.h"
#include "model/kernel.h"

namespace hmm::props {

// Not canonicalized; id counters are left at zero.
model::State Abstract(const impl::Kernel& kernel);

// Compares two canonical states field by field and returns one line per
// difference, e.g. "pid 1 vpn 0x10003: model=page#2 rw impl=zero r", at most
// `max_lines` (then a last line "... and N more"). Empty means equal. The id
// counters (next_pid, ...) are not compared: results compare the ids handed out.
std::vector<std::string> DiffStates(const model::State& model, const model::State& impl,
                                    size_t max_lines = 8);

}  // namespace hmm::props

#endif  // HMMREF_PROPS_ABSTRACT_H_
