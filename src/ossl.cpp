// SPDX-License-Identifier: Apache-2.0
#include "src/ossl.hpp"

#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/objects.h>
#include <openssl/rand.h>

#include <mutex>

#include "p11vault/error.hpp"

namespace p11vault::ossl {

namespace {

struct LibraryContext {
    OSSL_LIB_CTX* ctx = nullptr;
    OSSL_PROVIDER* default_provider = nullptr;
    OSSL_PROVIDER* legacy_provider = nullptr;
};

// Both contexts live for the whole process: providers are cheap to keep and freeing
// them at exit races with other static destructors.
LibraryContext make_context(bool with_legacy) {
    LibraryContext c;
    c.ctx = OSSL_LIB_CTX_new();
    if (c.ctx == nullptr) throw Error(ErrorKind::failure, "OpenSSL: cannot create a library context");
    c.default_provider = OSSL_PROVIDER_load(c.ctx, "default");
    if (c.default_provider == nullptr)
        throw Error(ErrorKind::failure, "OpenSSL: cannot load the default provider: " + last_error());
    if (with_legacy) {
        // Absent legacy module: old files (RC2, DES) fail later with a clear message.
        c.legacy_provider = OSSL_PROVIDER_load(c.ctx, "legacy");
        ERR_clear_error();
    }
    return c;
}

}  // namespace

OSSL_LIB_CTX* libctx() {
    static const LibraryContext context = make_context(true);
    return context.ctx;
}

OSSL_LIB_CTX* libctx_modern() {
    static const LibraryContext context = make_context(false);
    return context.ctx;
}

std::string last_error() {
    unsigned long code = ERR_get_error();
    std::string text;
    if (code != 0) {
        char buffer[256];
        ERR_error_string_n(code, buffer, sizeof buffer);
        // "error:1C800064:Provider routines::bad decrypt" -> keep the reason after the last ':'.
        text = buffer;
        auto colon = text.rfind(':');
        if (colon != std::string::npos && colon + 1 < text.size()) text = text.substr(colon + 1);
    }
    ERR_clear_error();
    return text.empty() ? "unknown OpenSSL error" : text;
}

void fail(int exit_code, const std::string& what) {
    throw Error(static_cast<ErrorKind>(exit_code), what + ": " + last_error());
}

X509_SIG* dup_sig(const X509_SIG* sig) {
    return static_cast<X509_SIG*>(ASN1_item_dup(ASN1_ITEM_rptr(X509_SIG), const_cast<X509_SIG*>(sig)));
}

PKCS8_PRIV_KEY_INFO* dup_p8info(const PKCS8_PRIV_KEY_INFO* info) {
    return static_cast<PKCS8_PRIV_KEY_INFO*>(
        ASN1_item_dup(ASN1_ITEM_rptr(PKCS8_PRIV_KEY_INFO), const_cast<PKCS8_PRIV_KEY_INFO*>(info)));
}

std::vector<std::uint8_t> random_bytes(std::size_t n) {
    std::vector<std::uint8_t> out(n);
    if (n != 0 && RAND_bytes_ex(libctx_modern(), out.data(), n, 256) != 1)
        fail(static_cast<int>(ErrorKind::failure), "random number generator");
    return out;
}

std::vector<std::uint8_t> sha256(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> out(32);
    if (EVP_Q_digest(libctx_modern(), "SHA256", nullptr, data, size, out.data(), nullptr) != 1)
        fail(static_cast<int>(ErrorKind::failure), "SHA-256");
    return out;
}

std::string hex(const std::uint8_t* data, std::size_t size) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(size * 2);
    for (std::size_t i = 0; i < size; ++i) {
        out.push_back(digits[data[i] >> 4]);
        out.push_back(digits[data[i] & 0x0f]);
    }
    return out;
}

std::string hex(const std::vector<std::uint8_t>& data) { return hex(data.data(), data.size()); }

std::string fingerprint(const std::vector<std::uint8_t>& digest) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    for (std::size_t i = 0; i < digest.size(); ++i) {
        if (i != 0) out.push_back(':');
        out.push_back(digits[digest[i] >> 4]);
        out.push_back(digits[digest[i] & 0x0f]);
    }
    return out;
}

std::vector<std::uint8_t> cert_der(const X509* cert) {
    unsigned char* der = nullptr;
    int length = i2d_X509(cert, &der);
    if (length <= 0) fail(static_cast<int>(ErrorKind::failure), "encoding a certificate");
    std::vector<std::uint8_t> out(der, der + length);
    OPENSSL_free(der);
    return out;
}

std::string oid_text(const ASN1_OBJECT* object) {
    char buffer[128];
    OBJ_obj2txt(buffer, sizeof buffer, object, 0);
    return buffer;
}

std::vector<std::uint8_t> octets(const ASN1_STRING* string) {
    const unsigned char* data = ASN1_STRING_get0_data(string);
    return std::vector<std::uint8_t>(data, data + ASN1_STRING_length(string));
}

std::string name_text(const X509_NAME* name) {
    Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) return "";
    char* data = nullptr;
    long length = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(length));
}

}  // namespace p11vault::ossl
