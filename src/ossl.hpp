// SPDX-License-Identifier: Apache-2.0
// Owners for every OpenSSL object (BoringSSL's bssl::UniquePtr), and the private library
// context p11vault uses for all of its cryptography.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "p11vault/error.hpp"
#include "p11vault/secret.hpp"

namespace p11vault::ossl {

template <typename T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const noexcept { Free(p); }
};
template <typename T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, Deleter<T, Free>>;

using Bio = Owned<BIO, BIO_free_all>;
using Pkey = Owned<EVP_PKEY, EVP_PKEY_free>;
using PkeyCtx = Owned<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using Cert = Owned<X509, X509_free>;
using CipherCtx = Owned<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using Cipher = Owned<EVP_CIPHER, EVP_CIPHER_free>;
using Md = Owned<EVP_MD, EVP_MD_free>;
using MdCtx = Owned<EVP_MD_CTX, EVP_MD_CTX_free>;
using Mac = Owned<EVP_MAC, EVP_MAC_free>;
using MacCtx = Owned<EVP_MAC_CTX, EVP_MAC_CTX_free>;
using Kdf = Owned<EVP_KDF, EVP_KDF_free>;
using KdfCtx = Owned<EVP_KDF_CTX, EVP_KDF_CTX_free>;
using P8Info = Owned<PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free>;
using Sig = Owned<X509_SIG, X509_SIG_free>;
using Algor = Owned<X509_ALGOR, X509_ALGOR_free>;
using Pkcs7 = Owned<PKCS7, PKCS7_free>;
using Pkcs12 = Owned<PKCS12, PKCS12_free>;
using SafeBag = Owned<PKCS12_SAFEBAG, PKCS12_SAFEBAG_free>;
using OctetString = Owned<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using Integer = Owned<ASN1_INTEGER, ASN1_INTEGER_free>;
using Object = Owned<ASN1_OBJECT, ASN1_OBJECT_free>;
using Name = Owned<X509_NAME, X509_NAME_free>;
using Pbe2Param = Owned<PBE2PARAM, PBE2PARAM_free>;
using Pbkdf2Param = Owned<PBKDF2PARAM, PBKDF2PARAM_free>;
using PbeParam = Owned<PBEPARAM, PBEPARAM_free>;

inline void free_pkcs7_stack(STACK_OF(PKCS7) * s) { sk_PKCS7_pop_free(s, PKCS7_free); }
inline void free_bag_stack(STACK_OF(PKCS12_SAFEBAG) * s) { sk_PKCS12_SAFEBAG_pop_free(s, PKCS12_SAFEBAG_free); }
using Pkcs7Stack = Owned<STACK_OF(PKCS7), free_pkcs7_stack>;
using BagStack = Owned<STACK_OF(PKCS12_SAFEBAG), free_bag_stack>;

// The private library context: default provider, plus the legacy provider for reading
// old files (RC2, RC4, DES). Loaded once per process; never the global default context,
// so p11vault neither sees nor changes what openssl.cnf configures for other code.
OSSL_LIB_CTX* libctx();
// Same, but without the legacy provider: what p11vault writes uses only this one.
OSSL_LIB_CTX* libctx_modern();

// The oldest error on OpenSSL's error queue as text (and clears the queue), for messages.
std::string last_error();
// Throws Error(code, what + ": " + last_error()).
[[noreturn]] void fail(ErrorKind code, const std::string& what);

// The DER of one OpenSSL object by its i2d function, appended to `out` (a byte vector,
// or SecretBytes for a private key: encoded in place, never in a buffer OpenSSL frees
// unwiped). Error(code, "encoding " + what) when OpenSSL cannot encode it.
template <typename Out, typename T>
void append_der(Out& out, int (*i2d)(const T*, unsigned char**), std::type_identity_t<const T*> object,
                ErrorKind code, const std::string& what) {
    const int length = i2d(object, nullptr);
    if (length <= 0) fail(code, "encoding " + what);
    const std::size_t at = out.size();
    out.resize(at + static_cast<std::size_t>(length));
    unsigned char* p = out.data() + at;
    if (i2d(object, &p) != length) fail(code, "encoding " + what);
}

// The DER of one OpenSSL object, as append_der.
template <typename T>
std::vector<std::uint8_t> der(int (*i2d)(const T*, unsigned char**), std::type_identity_t<const T*> object,
                              ErrorKind code, const std::string& what) {
    std::vector<std::uint8_t> out;
    append_der(out, i2d, object, code, what);
    return out;
}

// The DER of an object that holds a secret (a PrivateKeyInfo), as append_der.
template <typename T>
SecretBytes secret_der(int (*i2d)(const T*, unsigned char**), std::type_identity_t<const T*> object, ErrorKind code,
                       const std::string& what) {
    SecretBytes out;
    append_der(out, i2d, object, code, what);
    return out;
}

// Deep copies of ASN.1 objects OpenSSL 3.0 has no _dup function for.
X509_SIG* dup_sig(const X509_SIG* sig);
PKCS8_PRIV_KEY_INFO* dup_p8info(const PKCS8_PRIV_KEY_INFO* info);

std::vector<std::uint8_t> random_bytes(std::size_t n);
std::vector<std::uint8_t> sha256(const std::uint8_t* data, std::size_t size);
std::string hex(const std::uint8_t* data, std::size_t size);            // lowercase, no separators
std::string hex(const std::vector<std::uint8_t>& data);
std::string fingerprint(const std::vector<std::uint8_t>& sha256);      // AA:BB:... as openssl prints
std::vector<std::uint8_t> cert_der(const X509* cert);
// An OID as dotted text or its long name, and the bytes of an ASN.1 string.
std::string oid_text(const ASN1_OBJECT* object);
std::vector<std::uint8_t> octets(const ASN1_STRING* string);

// One-line RFC 2253 form of a name ("CN=x,O=y"), as `openssl x509 -nameopt RFC2253` prints.
std::string name_text(const X509_NAME* name);

}  // namespace p11vault::ossl
