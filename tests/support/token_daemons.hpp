// SPDX-License-Identifier: Apache-2.0
// The environment `scripts/token-daemons start DIR` wrote to DIR/env: module paths, token
// labels, test PINs and the variables the openCryptoki and tpm2-pkcs11 tokens need
// (ctest starts the daemons once per run as the fixture of the token tests).
//
// The file is $P11VAULT_TOKEN_DAEMONS_ENV, else the one the fixture writes in the build
// tree (P11VAULT_TOKEN_DAEMONS_ENV_DEFAULT). Running a test executable by hand: start the
// daemons first, `scripts/token-daemons start build/tests/token-daemons`.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace p11vault::testing {

class TokenDaemons {
public:
    // The process's one copy, read on first use.
    static const TokenDaemons& get();

    // The value of KEY in the file, or nothing.
    std::optional<std::string> value(const std::string& key) const;
    // The value of KEY; throws std::runtime_error naming the key and the file if absent.
    std::string require(const std::string& key) const;

    // Why a daemon-backed backend cannot be used in this run, or nothing when it can.
    // `prefix` is the backend's key prefix in the file: "OPENCRYPTOKI" or "TPM2".
    std::optional<std::string> unavailable(const std::string& prefix) const;

    const std::string& path() const { return path_; }

private:
    TokenDaemons();
    std::string path_;
    bool read_ = false;
    std::map<std::string, std::string> values_;
};

// True when the environment says this is CI (CI=true): there a backend that cannot be
// used fails its tests instead of skipping them.
bool running_in_ci();

}  // namespace p11vault::testing
