// SPDX-License-Identifier: Apache-2.0
#include "src/escrow/der.hpp"

#include <openssl/asn1.h>
#include <openssl/objects.h>

#include <fmt/format.h>

#include "p11vault/error.hpp"

namespace p11vault::der {

namespace {

[[noreturn]] void malformed(const std::string& what, const std::string& problem) {
    throw Error(ErrorKind::bad_input, fmt::format("{} is malformed: {}", what, problem));
}

}  // namespace

std::uint8_t Reader::peek_tag() const {
    if (data_.empty()) malformed(what_, "it ends early");
    return data_[0];
}

Element Reader::next_any() {
    if (data_.size() < 2) malformed(what_, "it ends early");
    const std::uint8_t tag = data_[0];
    if ((tag & 0x1f) == 0x1f) malformed(what_, "a tag number above 30");
    std::size_t length = data_[1];
    std::size_t header = 2;
    if (length == 0x80) malformed(what_, "an indefinite length (BER); p11vault reads DER");
    if (length > 0x80) {
        const std::size_t octets = length & 0x7f;
        if (octets > 4 || data_.size() < 2 + octets) malformed(what_, "a length it cannot hold");
        length = 0;
        for (std::size_t i = 0; i < octets; ++i) length = (length << 8) | data_[2 + i];
        header += octets;
    }
    if (length > data_.size() - header) malformed(what_, "an element longer than what holds it");
    Element element;
    element.tag = tag;
    element.content = data_.subspan(header, length);
    element.encoding = data_.subspan(0, header + length);
    data_ = data_.subspan(header + length);
    return element;
}

Element Reader::next(std::uint8_t tag) {
    if (data_.empty()) malformed(what_, fmt::format("an element with tag 0x{:02x} is missing", tag));
    if (data_[0] != tag) malformed(what_, fmt::format("tag 0x{:02x} where 0x{:02x} belongs", data_[0], tag));
    return next_any();
}

bool Reader::next_if(std::uint8_t tag, Element& out) {
    if (data_.empty() || data_[0] != tag) return false;
    out = next_any();
    return true;
}

void Reader::expect_end() const {
    if (!data_.empty()) malformed(what_, "bytes follow its last element");
}

std::uint64_t small_integer(const Element& element, const std::string& what) {
    if (element.tag != kInteger || element.content.empty() || element.content.size() > 8 ||
        (element.content[0] & 0x80) != 0)
        malformed(what, "an INTEGER out of range");
    std::uint64_t value = 0;
    for (std::uint8_t byte : element.content) value = (value << 8) | byte;
    return value;
}

std::string oid_text(const Element& element) {
    const unsigned char* p = element.encoding.data();
    ASN1_OBJECT* object = d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(element.encoding.size()));
    if (object == nullptr) malformed("an OBJECT IDENTIFIER", "it does not decode");
    char buffer[128];
    const int length = OBJ_obj2txt(buffer, sizeof buffer, object, 1);
    ASN1_OBJECT_free(object);
    if (length <= 0 || static_cast<std::size_t>(length) >= sizeof buffer)
        malformed("an OBJECT IDENTIFIER", "it is too long");
    return buffer;
}

Bytes encode(std::uint8_t tag, std::span<const std::uint8_t> content) {
    Bytes out{tag};
    const std::size_t length = content.size();
    if (length < 0x80) {
        out.push_back(static_cast<std::uint8_t>(length));
    } else {
        Bytes octets;
        for (std::size_t n = length; n != 0; n >>= 8) octets.insert(octets.begin(), static_cast<std::uint8_t>(n & 0xff));
        out.push_back(static_cast<std::uint8_t>(0x80 | octets.size()));
        out.insert(out.end(), octets.begin(), octets.end());
    }
    out.insert(out.end(), content.begin(), content.end());
    return out;
}

Bytes encode_integer(std::uint64_t value) {
    Bytes content;
    do {
        content.insert(content.begin(), static_cast<std::uint8_t>(value & 0xff));
        value >>= 8;
    } while (value != 0);
    if ((content[0] & 0x80) != 0) content.insert(content.begin(), 0);
    return encode(kInteger, content);
}

Bytes encode_oid(const std::string& dotted) {
    ASN1_OBJECT* object = OBJ_txt2obj(dotted.c_str(), 1);
    if (object == nullptr) throw Error(ErrorKind::failure, "cannot encode OID " + dotted);
    unsigned char* der = nullptr;
    const int length = i2d_ASN1_OBJECT(object, &der);
    ASN1_OBJECT_free(object);
    if (length <= 0) throw Error(ErrorKind::failure, "cannot encode OID " + dotted);
    Bytes out(der, der + length);
    OPENSSL_free(der);
    return out;
}

Bytes concat(std::initializer_list<std::span<const std::uint8_t>> parts) {
    Bytes out;
    for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
    return out;
}

}  // namespace p11vault::der
