// SPDX-License-Identifier: Apache-2.0
// The do-nothing defaults of the public sinks (include/p11vault/events.hpp).
#include "p11vault/events.hpp"

namespace p11vault {

Events::~Events() = default;
void Events::warning(std::string_view) {}
void Events::progress(const ProgressEvent&) {}
void Events::token_opened(const TokenDescription&) {}

SecretProvider::~SecretProvider() = default;

}  // namespace p11vault
