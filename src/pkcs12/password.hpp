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
    bmp,      // UTF-16BE + 00 00 (PKCS#12 KDF standard; "" gives 00 00), converted by
              // OpenSSL's OPENSSL_utf82uni: a password that is not valid UTF-8 as a
              // whole is taken as ISO-8859-1, every byte one character
    absent,   // 0 bytes: a NULL password (Windows, macOS "no password" exports)
    latin1,   // ISO-8859-1 bytes, when every character fits
    // The BMPString of p11vault before it used OpenSSL's conversion: each byte that does
    // not start a valid sequence alone is taken as ISO-8859-1, the rest decoded, with
    // overlong forms and surrogates accepted. Differs from `bmp` only for passwords that
    // are not valid UTF-8; read so that files it wrote still open.
    bmp_bytewise,
};

// The password in the given form, or nothing when the form does not apply (latin1 of a
// password with characters above U+00FF; bmp when OpenSSL cannot convert it).
std::optional<SecretBytes> password_bytes(const SecretBytes& utf8_password, PasswordForm form);

// True when the bytes are UTF-8 as OpenSSL decodes it (UTF8_getc): no invalid or
// overlong sequence, no encoded surrogate, nothing above U+10FFFF.
bool is_valid_utf8(const SecretBytes& text);

}  // namespace p11vault::pkcs12
