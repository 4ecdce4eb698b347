// SPDX-License-Identifier: Apache-2.0
// SecretBytes: the only type that carries PINs, passwords and clear key material.
//
// Following Tink's SecretData: the bytes are locked in RAM where the system allows
// (mlock, counted per page, so that freeing one secret never unlocks a page another
// still uses), wiped when freed or moved from, never copied implicitly, and there is no
// operator<< or formatter, so a secret cannot reach a log or a message by accident.
// Wiping uses explicit_bzero rather than OPENSSL_cleanse because this header is shared
// with the PKCS#11 layer, which does not depend on OpenSSL; both resist dead-store
// elimination.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "p11vault/export.hpp"

namespace p11vault {

class P11VAULT_EXPORT SecretBytes {
public:
    SecretBytes() noexcept = default;
    explicit SecretBytes(std::size_t size);  // zero-filled
    SecretBytes(const void* data, std::size_t size);
    static SecretBytes from_text(std::string_view text) { return SecretBytes(text.data(), text.size()); }

    SecretBytes(const SecretBytes&) = delete;
    SecretBytes& operator=(const SecretBytes&) = delete;
    SecretBytes(SecretBytes&& other) noexcept;
    SecretBytes& operator=(SecretBytes&& other) noexcept;
    ~SecretBytes();

    // An explicit copy, so every duplication of a secret is visible in the code.
    SecretBytes clone() const { return SecretBytes(data_, size_); }

    std::uint8_t* data() noexcept { return data_; }
    const std::uint8_t* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::span<const std::uint8_t> bytes() const noexcept { return {data_, size_}; }
    // The bytes as characters, for APIs that take a password as char*. Named so that
    // every such use can be found with grep.
    std::string_view reveal_text() const noexcept {
        return {reinterpret_cast<const char*>(data_), size_};
    }

    void append(const void* data, std::size_t size);
    void push_back(std::uint8_t byte) { append(&byte, 1); }
    void resize(std::size_t size);  // new bytes are zero; dropped bytes are wiped
    void clear() noexcept;          // wipes and frees

    bool operator==(const SecretBytes& other) const noexcept;  // constant time in the length

private:
    void reserve(std::size_t capacity);

    std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

// Wipes memory in a way the compiler cannot remove.
P11VAULT_EXPORT void secure_wipe(void* data, std::size_t size) noexcept;

}  // namespace p11vault
