// SPDX-License-Identifier: Apache-2.0
// The byte forms a PKCS#12 password takes on its way into a KDF.
//
// The standard says: the PKCS#12 KDF (MAC, legacy PBE) takes the password as a
// NUL-terminated BMPString (UTF-16BE), PBKDF2 takes its UTF-8 bytes. Real producers
// deviate (absent password = 0 bytes, NSS feeding PBKDF2 the BMPString, JSAFE the Latin-1
// bytes); the reader tries the standard form first and these only after it fails.
#pragma once

#include <optional>

#include "p11vault/secret.hpp"

namespace p11vault::pkcs12 {

enum class PasswordForm {
    utf8,     // the UTF-8 bytes as given (PBKDF2 standard)
    bmp,      // UTF-16BE + 00 00 (PKCS#12 KDF standard; "" gives 00 00)
    absent,   // 0 bytes: a NULL password (Windows, macOS "no password" exports)
    latin1,   // ISO-8859-1 bytes, when every character fits
};

const char* form_name(PasswordForm form);

// The password in the given form, or nothing when the form does not apply (latin1 of a
// password with characters above U+00FF).
std::optional<SecretBytes> password_bytes(const SecretBytes& utf8_password, PasswordForm form);

}  // namespace p11vault::pkcs12
