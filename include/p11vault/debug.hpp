// SPDX-License-Identifier: Apache-2.0
// Debug logging of the PKCS#11 layer (`p11vault --verbose`, P11VAULT_DEBUG=1): every
// PKCS#11 call p11vault makes and its result, never argument values (no PIN, no key
// bytes), one line each on stderr.
#pragma once

#include "p11vault/export.hpp"

namespace p11vault {

// For the whole process, from the next PKCS#11 call on.
P11VAULT_EXPORT void set_debug_logging(bool enabled);

}  // namespace p11vault
