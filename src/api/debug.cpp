// SPDX-License-Identifier: Apache-2.0
#include "p11vault/debug.hpp"

#include "pkcs11/error.hpp"

namespace p11vault {

void set_debug_logging(bool enabled) { pkcs11::set_debug_logging(enabled); }

}  // namespace p11vault
