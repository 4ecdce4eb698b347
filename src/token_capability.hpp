// SPDX-License-Identifier: Apache-2.0
// Whether a token can hold a key of a given type, asked before anything is written: by
// its mechanism list, by the key sizes it reports for DSA, and for EC curves by the token
// itself (a session-only public key object on the curve, which it keeps or refuses;
// PKCS#11 has no list of curves). Used by restore planning and by verify's warning.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pkcs11/session.hpp"
#include "src/keys.hpp"

namespace p11vault {

// C_CreateObject answers that refuse this key or its template, not a failing token.
bool means_key_refused(CK_RV rv);

class TokenCapability {
public:
    explicit TokenCapability(pkcs11::Session& session);

    // Why the token cannot hold `type` (the key whose public half is `public_key`), in
    // words naming the token's limit or answer; nullopt when nothing says it cannot.
    std::optional<std::string> refusal(const keys::KeyDescription& type, const EVP_PKEY* public_key);
    // The token's mechanism list (the session's, read once).
    const pkcs11::MechanismList& mechanisms() { return session_.mechanisms(); }

private:
    std::optional<std::string> curve_refusal(const keys::KeyDescription& type, const EVP_PKEY* public_key);

    pkcs11::Session& session_;
    std::map<std::string, std::optional<std::string>> curves_;  // answers by curve
};

}  // namespace p11vault
