// SPDX-License-Identifier: Apache-2.0
#include "p11vault/secret.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "pkcs11/locked_pages.hpp"

namespace p11vault {

void secure_wipe(void* data, std::size_t size) noexcept {
    if (data != nullptr && size != 0) explicit_bzero(data, size);
}

namespace {

std::uint8_t* allocate_locked(std::size_t capacity) {
    auto* p = static_cast<std::uint8_t*>(std::calloc(capacity, 1));
    if (p == nullptr) throw std::bad_alloc();
    try {
        locked_pages::lock(p, capacity);  // counted: another secret may share these pages
    } catch (...) {
        std::free(p);
        throw;
    }
    return p;
}

void release_locked(std::uint8_t* p, std::size_t capacity) noexcept {
    if (p == nullptr) return;
    secure_wipe(p, capacity);
    locked_pages::unlock(p, capacity);
    std::free(p);
}

}  // namespace

SecretBytes::SecretBytes(std::size_t size) { resize(size); }

SecretBytes::SecretBytes(const void* data, std::size_t size) { append(data, size); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
    if (this != &other) {
        clear();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        capacity_ = std::exchange(other.capacity_, 0);
    }
    return *this;
}

SecretBytes::~SecretBytes() { clear(); }

void SecretBytes::reserve(std::size_t capacity) {
    if (capacity <= capacity_) return;
    std::size_t grown = capacity_ == 0 ? 32 : capacity_ * 2;
    if (grown < capacity) grown = capacity;
    std::uint8_t* fresh = allocate_locked(grown);
    if (size_ != 0) std::memcpy(fresh, data_, size_);
    release_locked(data_, capacity_);
    data_ = fresh;
    capacity_ = grown;
}

void SecretBytes::append(const void* data, std::size_t size) {
    if (size == 0) return;
    reserve(size_ + size);
    std::memcpy(data_ + size_, data, size);
    size_ += size;
}

void SecretBytes::resize(std::size_t size) {
    if (size > size_) {
        reserve(size);
        std::memset(data_ + size_, 0, size - size_);
    } else if (size < size_) {
        secure_wipe(data_ + size, size_ - size);
    }
    size_ = size;
}

void SecretBytes::clear() noexcept {
    release_locked(data_, capacity_);
    data_ = nullptr;
    size_ = 0;
    capacity_ = 0;
}

bool SecretBytes::operator==(const SecretBytes& other) const noexcept {
    if (size_ != other.size_) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < size_; ++i) diff |= static_cast<unsigned char>(data_[i] ^ other.data_[i]);
    return diff == 0;
}

}  // namespace p11vault
