// SPDX-License-Identifier: Apache-2.0
// What p11vault is and what it was built with: for `--version`, records and bug reports.
#pragma once

#include <string>

#include "p11vault/export.hpp"

namespace p11vault {

struct VersionInfo {
    std::string version;  // the release, "0.1.0"
    std::string commit;   // `git describe` of the source tree at build time, "unknown" outside git
    std::string openssl;  // the libcrypto this process runs with, "OpenSSL 3.0.19 27 Jan 2026"
    std::string p11kit;   // the p11-kit the binary was built against, "0.24.1"
};

P11VAULT_EXPORT const VersionInfo& version_info();

// "p11vault 0.1.0 (commit 1a2b3c4d5e6f) with OpenSSL 3.0.19 27 Jan 2026, p11-kit 0.24.1":
// the first line of `p11vault --version` and the `tool` of every record.
P11VAULT_EXPORT std::string version_text();

}  // namespace p11vault
