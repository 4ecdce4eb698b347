// SPDX-License-Identifier: Apache-2.0
// A minimal DER reader and writer for the few structures of the escrow formats that
// OpenSSL's public API does not open: the RecipientInfos and the encrypted content of a
// CMS AuthEnvelopedData (a key on a token cannot go through CMS_decrypt), the
// ECC-CMS-SharedInfo of RFC 5753, and the threshold container (docs/escrow.md).
//
// Definite lengths only (DER): BER's indefinite lengths are refused, as are lengths over
// the input. Every failure is Error(bad_input) naming what was being read.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace p11vault::der {

using Bytes = std::vector<std::uint8_t>;

// Tags as they appear in the first byte (class, constructed bit, number < 31).
inline constexpr std::uint8_t kInteger = 0x02, kBitString = 0x03, kOctetString = 0x04, kNull = 0x05, kOid = 0x06,
                              kUtf8String = 0x0c, kSequence = 0x30, kSet = 0x31;
inline constexpr std::uint8_t context(unsigned number, bool constructed) {
    return static_cast<std::uint8_t>(0x80 | (constructed ? 0x20 : 0) | number);
}

// One element: its tag, its content, and the whole encoding (tag, length, content).
struct Element {
    std::uint8_t tag = 0;
    std::span<const std::uint8_t> content;
    std::span<const std::uint8_t> encoding;
};

// Reads elements one after the other from a span (the content of a constructed element).
class Reader {
public:
    Reader(std::span<const std::uint8_t> data, std::string what) : data_(data), what_(std::move(what)) {}
    bool empty() const { return data_.empty(); }
    std::uint8_t peek_tag() const;
    // The next element; Error(bad_input) when it is missing or its tag is not `tag`.
    Element next(std::uint8_t tag);
    Element next_any();
    // The next element when its tag is `tag`, else nothing consumed.
    bool next_if(std::uint8_t tag, Element& out);
    // Error(bad_input) unless everything was read.
    void expect_end() const;
    const std::string& what() const { return what_; }

private:
    std::span<const std::uint8_t> data_;
    std::string what_;
};

// A small non-negative INTEGER (at most 8 content bytes).
std::uint64_t small_integer(const Element& element, const std::string& what);
// An OID's dotted text ("1.2.840.113549.1.1.7").
std::string oid_text(const Element& element);

// Writing: one element from its tag and content.
Bytes encode(std::uint8_t tag, std::span<const std::uint8_t> content);
Bytes encode_integer(std::uint64_t value);
Bytes encode_oid(const std::string& dotted);
// The concatenation of encoded elements.
Bytes concat(std::initializer_list<std::span<const std::uint8_t>> parts);

}  // namespace p11vault::der
