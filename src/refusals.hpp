// SPDX-License-Identifier: Apache-2.0
// Refusals of many keys at once (backup: keys the token will not let go; restore: keys the
// token cannot hold). The message groups them by reason, each reason once with its keys
// counted and the first few named, so 100 refused keys make one readable line; the error
// carries every key as an ErrorItem for the --json failure document.
#pragma once

#include <string>
#include <vector>

#include "p11vault/error.hpp"

namespace p11vault {

struct Refusal {
    std::string name;  // as the message names it: `key id=01 label="CA"`, `bag 3 (id=01 label="CA")`
    ErrorItem item;    // item.reason is the reason
};

// "3 keys (key id=01 ..., key id=02 ..., key id=03 ... and 97 more): reason; 1 key (...): other"
std::string fold_refusals(const std::vector<Refusal>& refusals);

// Error(code, "<lead>: <folded>; <tail>") carrying every refused key; a single refusal is
// "<name>: <reason>; <tail>" without the lead.
[[noreturn]] void throw_refusals(ErrorKind code, const std::string& lead, const std::vector<Refusal>& refusals,
                                 const std::string& tail);

}  // namespace p11vault
