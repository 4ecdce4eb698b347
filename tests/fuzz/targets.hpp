// SPDX-License-Identifier: Apache-2.0
// The bodies of the libFuzzer targets (fuzz_*.cpp), shared with the unit test that
// replays tests/fuzz/regressions/<target>/ (tests/unit/fuzz_regressions_test.cpp), so a
// crash found by fuzzing stays a test in the ordinary build.
//
// Each body catches p11vault::Error (the expected refusal of bad input); any other
// exception escapes and is a finding, as is every sanitizer report.
#pragma once

#include <openssl/asn1.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/error.hpp"
#include "p11vault/secret.hpp"
#include "p11vault/secret_source.hpp"
#include "pkcs11/uri.hpp"
#include "src/pkcs12/reader.hpp"
#include "src/shares.hpp"

namespace p11vault::fuzz {

// The fixed password of the PKCS#12 target; scripts/fuzz makes seed files with it.
inline constexpr const char* kPkcs12Password = "fuzz";
// An environment variable that exists, so that env: sources also succeed sometimes.
inline constexpr const char* kSecretVariable = "P11VAULT_FUZZ_SECRET";
// Separates several shares in one share-target input.
inline constexpr const char* kShareSeparator = "\n=====\n";

namespace detail {

inline void append_length(std::vector<std::uint8_t>& out, std::size_t length) {
    if (length < 0x80) {
        out.push_back(static_cast<std::uint8_t>(length));
        return;
    }
    std::vector<std::uint8_t> bytes;
    for (std::size_t n = length; n != 0; n >>= 8) bytes.insert(bytes.begin(), static_cast<std::uint8_t>(n & 0xff));
    out.push_back(static_cast<std::uint8_t>(0x80 | bytes.size()));
    out.insert(out.end(), bytes.begin(), bytes.end());
}

// The PFX without its MacData: SEQUENCE { version, authSafe }. The MAC keeps mutations of
// the authenticated content from reaching the code behind it; a file without a MAC is
// read (with a warning), so this lets the fuzzer reach the bags. Nothing when the outer
// encoding is not definite-length DER with a MAC.
inline std::optional<std::vector<std::uint8_t>> without_mac(const std::vector<std::uint8_t>& der) {
    const unsigned char* p = der.data();
    const unsigned char* const end = p + der.size();
    long length = 0;
    int tag = 0, cls = 0;
    int ret = ASN1_get_object(&p, &length, &tag, &cls, end - p);
    if ((ret & 0x80) != 0 || (ret & 1) != 0 || tag != V_ASN1_SEQUENCE) return std::nullopt;
    const unsigned char* const body = p;
    const unsigned char* const body_end = p + length;
    for (int field = 0; field < 2; ++field) {  // version, authSafe
        ret = ASN1_get_object(&p, &length, &tag, &cls, body_end - p);
        if ((ret & 0x80) != 0 || (ret & 1) != 0) return std::nullopt;
        p += length;
    }
    if (p >= body_end) return std::nullopt;  // no MacData
    std::vector<std::uint8_t> out{0x30};
    append_length(out, static_cast<std::size_t>(p - body));
    out.insert(out.end(), body, p);
    return out;
}

inline void read_pkcs12(const std::vector<std::uint8_t>& der) {
    static const SecretBytes password = SecretBytes::from_text(kPkcs12Password);
    pkcs12::Limits limits;
    limits.max_iterations = 100;  // fast inputs (the seeds use 1); the cap itself is tested elsewhere
    try {
        pkcs12::Reader reader(der, password, limits);
        for (const auto& key : reader.contents().keys) {
            try {
                ossl::Pkey parsed = reader.private_key(key);
            } catch (const Error&) {
            }
        }
    } catch (const Error&) {
    }
}

}  // namespace detail

// pkcs12::Reader with the password "fuzz", then every key bag decrypted and parsed; the
// same again for the file without its MAC.
inline void pkcs12_one(const std::uint8_t* data, std::size_t size) {
    const std::vector<std::uint8_t> der(data, data + size);
    detail::read_pkcs12(der);
    if (auto stripped = detail::without_mac(der)) detail::read_pkcs12(*stripped);
}

// pkcs11: URIs, and the pass:/env: secret sources (the sources that touch nothing
// outside the process: no files, descriptors, terminals or prompts).
inline void uri_one(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        pkcs11::TokenUri uri = pkcs11::parse_token_uri(text);
        pkcs11::TokenInfo token;
        token.label = "fuzz";
        token.manufacturer = "p11vault";
        (void)uri.matches(token);
    } catch (const Error&) {
    }
    if (size == 0) return;
    const std::string rest = text.substr(1);
    const std::string source = ((data[0] & 1) != 0 ? "pass:" : "env:") + rest;
    try {
        SecretBytes secret = read_secret(source, "fuzz secret", "--password");
        (void)secret.size();
    } catch (const Error&) {
    }
}

// One or more share texts separated by kShareSeparator: each parsed, then all of those
// that parse combined.
inline void share_one(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    std::vector<shares::Share> parsed;
    std::size_t start = 0;
    for (int n = 0; start <= text.size() && n < 300; ++n) {
        std::size_t next = text.find(kShareSeparator, start);
        if (next == std::string::npos) next = text.size();
        try {
            parsed.push_back(shares::parse_share(text.substr(start, next - start), "share " + std::to_string(n + 1)));
        } catch (const Error&) {
        }
        start = next + std::string(kShareSeparator).size();
    }
    if (parsed.empty()) return;
    try {
        SecretBytes secret = shares::combine(parsed);
        (void)secret.size();
    } catch (const Error&) {
    }
}

// For the targets' LLVMFuzzerInitialize and the replaying test.
inline void set_up_environment() { ::setenv(kSecretVariable, "fuzz secret value", 1); }

}  // namespace p11vault::fuzz
