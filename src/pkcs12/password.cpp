// SPDX-License-Identifier: Apache-2.0
#include "src/pkcs12/password.hpp"

#include <cstdint>

namespace p11vault::pkcs12 {

namespace {

// Decodes UTF-8; invalid sequences decode byte-wise as Latin-1, as OpenSSL does, so a
// password typed in a Latin-1 terminal still yields something deterministic.
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

const char* form_name(PasswordForm form) {
    switch (form) {
        case PasswordForm::utf8: return "UTF-8";
        case PasswordForm::bmp: return "BMPString";
        case PasswordForm::absent: return "absent (0 bytes)";
        case PasswordForm::latin1: return "ISO-8859-1";
    }
    return "?";
}

std::optional<SecretBytes> password_bytes(const SecretBytes& password, PasswordForm form) {
    switch (form) {
        case PasswordForm::utf8: return password.clone();
        case PasswordForm::absent: return SecretBytes();
        case PasswordForm::bmp: {
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

}  // namespace p11vault::pkcs12
