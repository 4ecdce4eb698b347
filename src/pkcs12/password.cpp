// SPDX-License-Identifier: Apache-2.0
#include "src/pkcs12/password.hpp"

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/pkcs12.h>

#include <climits>
#include <cstdint>

namespace p11vault::pkcs12 {

namespace {

// Decodes UTF-8 leniently: a byte that does not start a valid sequence decodes alone as
// Latin-1; overlong forms and surrogates decode as what they encode. Used for the
// Latin-1 form (a producer quirk) and the BMPString of p11vault before it used
// OpenSSL's conversion (PasswordForm::bmp_bytewise); not for the standard forms.
template <typename Sink>
void for_each_code_point(const SecretBytes& text, Sink&& sink) {
    const std::uint8_t* p = text.data();
    std::size_t n = text.size();
    std::size_t i = 0;
    while (i < n) {
        std::uint8_t b = p[i];
        std::uint32_t cp = 0;
        std::size_t extra = 0;
        if (b < 0x80) {
            cp = b;
        } else if ((b & 0xE0) == 0xC0) {
            cp = b & 0x1F;
            extra = 1;
        } else if ((b & 0xF0) == 0xE0) {
            cp = b & 0x0F;
            extra = 2;
        } else if ((b & 0xF8) == 0xF0) {
            cp = b & 0x07;
            extra = 3;
        } else {
            sink(b);
            ++i;
            continue;
        }
        bool valid = i + extra < n || extra == 0;
        for (std::size_t k = 1; valid && k <= extra; ++k) {
            if (i + k >= n || (p[i + k] & 0xC0) != 0x80) valid = false;
            else cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (!valid || cp > 0x10FFFF) {
            sink(b);
            ++i;
            continue;
        }
        sink(cp);
        i += extra + 1;
    }
}

}  // namespace

std::optional<SecretBytes> password_bytes(const SecretBytes& password, PasswordForm form) {
    switch (form) {
        case PasswordForm::utf8: return password.clone();
        case PasswordForm::absent: return SecretBytes();
        case PasswordForm::bmp: {
            // OpenSSL's own conversion, so that the same password bytes open the same file
            // in OpenSSL and in p11vault: it falls back to ISO-8859-1 for the whole
            // password when any of it is not valid UTF-8.
            if (password.size() > static_cast<std::size_t>(INT_MAX / 4)) return std::nullopt;
            unsigned char* uni = nullptr;
            int length = 0;
            const char* text = password.empty() ? "" : reinterpret_cast<const char*>(password.data());
            if (OPENSSL_utf82uni(text, static_cast<int>(password.size()), &uni, &length) == nullptr) return std::nullopt;
            SecretBytes out(uni, static_cast<std::size_t>(length));
            OPENSSL_clear_free(uni, static_cast<std::size_t>(length));
            return out;
        }
        case PasswordForm::bmp_bytewise: {
            SecretBytes out;
            for_each_code_point(password, [&](std::uint32_t cp) {
                if (cp > 0xFFFF) {  // UTF-16 surrogate pair
                    cp -= 0x10000;
                    std::uint16_t high = static_cast<std::uint16_t>(0xD800 + (cp >> 10));
                    std::uint16_t low = static_cast<std::uint16_t>(0xDC00 + (cp & 0x3FF));
                    const std::uint8_t units[4] = {static_cast<std::uint8_t>(high >> 8), static_cast<std::uint8_t>(high),
                                                   static_cast<std::uint8_t>(low >> 8), static_cast<std::uint8_t>(low)};
                    out.append(units, 4);
                } else {
                    const std::uint8_t unit[2] = {static_cast<std::uint8_t>(cp >> 8), static_cast<std::uint8_t>(cp)};
                    out.append(unit, 2);
                }
            });
            const std::uint8_t terminator[2] = {0, 0};
            out.append(terminator, 2);
            return out;
        }
        case PasswordForm::latin1: {
            SecretBytes out;
            bool fits = true;
            for_each_code_point(password, [&](std::uint32_t cp) {
                if (cp > 0xFF) fits = false;
                else out.push_back(static_cast<std::uint8_t>(cp));
            });
            if (!fits) return std::nullopt;
            return out;
        }
    }
    return std::nullopt;
}

bool is_valid_utf8(const SecretBytes& text) {
    const unsigned char* p = text.data();
    std::size_t left = text.size();
    while (left > 0) {
        unsigned long code_point = 0;
        const int length = UTF8_getc(p, left > INT_MAX ? INT_MAX : static_cast<int>(left), &code_point);
        if (length <= 0 || code_point > 0x10FFFF) return false;
        p += length;
        left -= static_cast<std::size_t>(length);
    }
    return true;
}

}  // namespace p11vault::pkcs12
