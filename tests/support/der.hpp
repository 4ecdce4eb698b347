// SPDX-License-Identifier: Apache-2.0
// DER built byte by byte, for tests that need structures no library writes (hostile or
// malformed PKCS#12 files). Definite lengths only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace p11vault::testing::der {

using Bytes = std::vector<std::uint8_t>;

inline Bytes tlv(std::uint8_t tag, const Bytes& content) {
    Bytes out{tag};
    const std::size_t n = content.size();
    if (n < 0x80) {
        out.push_back(static_cast<std::uint8_t>(n));
    } else {
        Bytes digits;
        for (std::size_t v = n; v != 0; v >>= 8) digits.insert(digits.begin(), static_cast<std::uint8_t>(v & 0xff));
        out.push_back(static_cast<std::uint8_t>(0x80 | digits.size()));
        out.insert(out.end(), digits.begin(), digits.end());
    }
    out.insert(out.end(), content.begin(), content.end());
    return out;
}

inline Bytes concat(const std::vector<Bytes>& parts) {
    Bytes out;
    for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
    return out;
}

inline Bytes sequence(const std::vector<Bytes>& parts) { return tlv(0x30, concat(parts)); }
inline Bytes explicit0(const Bytes& content) { return tlv(0xa0, content); }
inline Bytes octet_string(const Bytes& content) { return tlv(0x04, content); }
// A non-negative INTEGER below 256 (a leading zero keeps 128..255 from reading as negative).
inline Bytes integer(std::uint8_t value) {
    return value < 0x80 ? tlv(0x02, {value}) : tlv(0x02, {0x00, value});
}

// 1.2.840.113549.1.7.1 (data), .7.3 (envelopedData), .7.6 (encryptedData)
inline const Bytes kOidData = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01};
inline const Bytes kOidEnvelopedData = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03};
inline const Bytes kOidEncryptedData = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x06};
// 1.2.840.113549.1.12.10.1.5 (secretBag), .6 (safeContentsBag)
inline const Bytes kOidSecretBag = {0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x05};
inline const Bytes kOidSafeContentsBag = {0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x06};
// 2.16.840.1.101.3.4.2.1 (SHA-256)
inline const Bytes kOidSha256 = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01};

// ContentInfo { data, [0] OCTET STRING content }
inline Bytes data_content_info(const Bytes& content) { return sequence({kOidData, explicit0(octet_string(content))}); }

// SecretBag ::= SEQUENCE { secretTypeId OID, secretValue [0] EXPLICIT OCTET STRING }, as a
// SafeBag: a bag p11vault does not use, which the reader skips with a warning.
inline Bytes secret_bag() {
    return sequence({kOidSecretBag, explicit0(sequence({kOidData, explicit0(octet_string({0x42}))}))});
}

}  // namespace p11vault::testing::der
