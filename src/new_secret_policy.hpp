// SPDX-License-Identifier: Apache-2.0
// What p11vault accepts as a new backup password, and the PINs it presents to a token:
// nothing that protects keys weakly by accident, nothing that costs a PIN try for
// certain. Refusals are Error(usage) and say what to do; weaknesses that are a choice
// (a short password, fewer iterations) are warnings. Messages never hold the secret.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "p11vault/secret.hpp"
#include "src/pkcs12/writer.hpp"

namespace p11vault {

// A password shorter than this many characters (UTF-8 code points) is warned about.
inline constexpr std::size_t kShortPasswordCharacters = 12;

// --iter of backup: above what restore and verify accept by default (--max-iterations),
// Error(usage): p11vault would write a file its own readers refuse. 0 is the profile's
// default.
void check_new_iterations(std::uint64_t iterations);

// The password of a new backup file: empty or holding a NUL byte (OpenSSL and most
// readers stop at it, so the file could not be opened with the password typed) is
// Error(usage). Returns the warnings: fewer than kShortPasswordCharacters characters,
// `iterations` (0 = the profile's default) below the profile's default.
std::vector<std::string> check_new_password(const SecretBytes& password, pkcs12::Profile profile,
                                            std::uint64_t iterations);

// A PIN about to be given to C_Login: empty is Error(usage) before the token sees it (an
// empty PIN is never right where a token asks for one, and each wrong PIN costs a try).
// `what` names it ("PIN of token \"CA\"").
void check_pin(const SecretBytes& pin, const std::string& what);

}  // namespace p11vault
