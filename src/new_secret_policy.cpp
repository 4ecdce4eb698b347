// SPDX-License-Identifier: Apache-2.0
#include "src/new_secret_policy.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "src/pkcs12/pbe.hpp"

namespace p11vault {
namespace {

// Code points of UTF-8 text: every byte that does not continue a sequence. Text that is
// not valid UTF-8 counts one character a byte, as OpenSSL reads it (ISO-8859-1).
std::size_t characters(const SecretBytes& text) {
    if (!pkcs12::is_valid_utf8(text)) return text.size();
    const auto starts_a_character = [](std::uint8_t byte) { return (byte & 0xC0) != 0x80; };
    return static_cast<std::size_t>(std::count_if(text.bytes().begin(), text.bytes().end(), starts_a_character));
}

}  // namespace

void check_new_iterations(std::uint64_t iterations) {
    const std::uint64_t readable = pkcs12::Limits{}.max_iterations;
    if (iterations > readable) {
        throw Error(ErrorKind::usage, fmt::format("--iter {} is above {}, the most restore and verify accept without "
                                                 "--max-iterations: choose at most {}",
                                                 iterations, readable, readable));
    }
}

std::vector<std::string> check_new_password(const SecretBytes& password, pkcs12::Profile profile,
                                            std::uint64_t iterations) {
    if (password.empty()) {
        throw Error(ErrorKind::usage, "the backup password is empty: a file under the empty password protects "
                                     "nothing; give a password (or use split --generate and --password shares:...)");
    }
    if (std::find(password.bytes().begin(), password.bytes().end(), std::uint8_t{0}) != password.bytes().end()) {
        throw Error(ErrorKind::usage, "the backup password contains a NUL byte, which OpenSSL and other readers "
                                     "cannot take: the file could not be opened; choose another password");
    }
    std::vector<std::string> warnings;
    if (!pkcs12::is_valid_utf8(password)) {
        warnings.push_back("the backup password is not valid UTF-8: p11vault and OpenSSL take it byte by byte as "
                           "ISO-8859-1, other readers (Java, NSS, Windows) may not open the file with it");
    }
    if (const std::size_t length = characters(password); length < kShortPasswordCharacters) {
        warnings.push_back(fmt::format("the backup password has {} characters, fewer than {}: the file is only as "
                                       "strong as its password (split --generate makes a strong one)",
                                       length, kShortPasswordCharacters));
    }
    const std::uint64_t profile_default =
        pkcs12::uses_pbes2(profile) ? pkcs12::kModernIterations : pkcs12::kLegacyIterations;
    if (iterations != 0 && iterations < profile_default) {
        warnings.push_back(fmt::format("--iter {} is below the {} profile's {}: each password guess costs an "
                                       "attacker that much less",
                                       iterations, pkcs12::profile_name(profile),
                                       profile_default));
    }
    return warnings;
}

void check_pin(const SecretBytes& pin, const std::string& what) {
    if (pin.empty()) {
        throw Error(ErrorKind::usage, fmt::format("the {} is empty: not given to the token (a wrong PIN costs a try); "
                                                 "check the --pin source",
                                                 what));
    }
}

}  // namespace p11vault
