// SPDX-License-Identifier: Apache-2.0
// verify --drill: restore the file into a throw-away SoftHSM token (a private directory
// and configuration, which the caller's DrillEnvironment points SOFTHSM2_CONF at), sign
// and verify a test message with every key (and RSA encrypt/decrypt), then delete the
// token. Proves the backup restores and works, not only that it parses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "p11vault/verify.hpp"
#include "src/pkcs12/reader.hpp"
#include "src/verify.hpp"

namespace p11vault {

struct DrillResult {
    std::vector<std::uint8_t> id;  // the key's localKeyID / CKA_ID
    std::string label;
    std::string type;              // "RSA-2048"
    std::string key;               // "id=01 label=\"ca\" RSA-2048"
    bool ok = false;
    std::string detail;     // "restored (host-decrypt), signed and verified, decrypted"
};

// Error(token) when the SoftHSM2 module is not installed. `softhsm_module` empty means
// the default Debian path.
// Whether the private key `handle` (of `type`) is the key of `public_key`, by a signature
// it makes over a fixed message that verifies with `public_key` on the host. For keys
// whose object shows no public half (EC private keys rarely carry CKA_EC_POINT). A token
// that cannot sign with it answers false.
bool signs_for(pkcs11::Session& session, CK_OBJECT_HANDLE handle, CK_KEY_TYPE type, const EVP_PKEY* public_key);

// `jobs`: sessions restoring and signing at once (0: chosen as for a restore).
std::vector<DrillResult> run_drill(pkcs12::Reader& reader, const Verification& verification,
                                   const std::string& softhsm_module, DrillEnvironment& environment, unsigned jobs = 0);

}  // namespace p11vault
