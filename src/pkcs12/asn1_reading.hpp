// SPDX-License-Identifier: Apache-2.0
// Reading a PKCS#12 file's DER by hand, where OpenSSL's parsers would accept too much:
// the reader's error for a malformed file, and one TLV header.
#pragma once

#include <openssl/asn1.h>

#include <string>

#include "p11vault/error.hpp"
#include "src/ossl.hpp"

namespace p11vault::pkcs12 {

[[noreturn]] inline void malformed(const std::string& what) {
    ossl::last_error();  // drop OpenSSL's queue; our message says what matters
    throw Error(ErrorKind::bad_input, "not a valid PKCS#12 file: " + what);
}

// One TLV header at p (advanced past it); malformed(what) when there is none.
struct Header {
    int tag = 0;
    int cls = 0;
    bool constructed = false;
    long length = 0;
    bool indefinite = false;
};
inline Header read_header(const unsigned char*& p, const unsigned char* end, const char* what) {
    Header h;
    int ret = ASN1_get_object(&p, &h.length, &h.tag, &h.cls, end - p);
    if ((ret & 0x80) != 0) malformed(what);
    h.constructed = (ret & V_ASN1_CONSTRUCTED) != 0;
    h.indefinite = (ret & 1) != 0;
    return h;
}

}  // namespace p11vault::pkcs12
