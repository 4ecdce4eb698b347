// SPDX-License-Identifier: Apache-2.0
#include "tests/support/cli_helpers.hpp"

#include <gtest/gtest.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace p11vault::testing {

namespace {

std::string openssl_error(const std::string& what) {
    char text[256] = "no OpenSSL error queued";
    if (unsigned long code = ERR_get_error(); code != 0) ERR_error_string_n(code, text, sizeof text);
    ERR_clear_error();
    return what + ": " + text;
}

struct BioFree {
    void operator()(BIO* bio) const noexcept { BIO_free_all(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Unloaded at exit, before OPENSSL_cleanup (which was registered with atexit earlier, by
// OpenSSL's own initialisation, so it runs later): a provider still loaded then is never
// freed, and the legacy provider's child library context with it, which LeakSanitizer
// rightly reports.
OSSL_PROVIDER* default_provider = nullptr;
OSSL_PROVIDER* legacy_provider = nullptr;

void unload_providers() {
    if (legacy_provider != nullptr) OSSL_PROVIDER_unload(legacy_provider);
    if (default_provider != nullptr) OSSL_PROVIDER_unload(default_provider);
    legacy_provider = default_provider = nullptr;
}

void load_providers() {
    static std::once_flag once;
    std::call_once(once, [] {
        // Loading one provider explicitly stops the automatic load of the default one.
        default_provider = OSSL_PROVIDER_load(nullptr, "default");
        legacy_provider = OSSL_PROVIDER_load(nullptr, "legacy");
        std::atexit(unload_providers);
    });
}

P12Bag read_bag(const PKCS12_SAFEBAG* bag, const std::string& password) {
    P12Bag out;
    if (const ASN1_TYPE* id = PKCS12_SAFEBAG_get0_attr(bag, NID_localKeyID)) {
        if (id->type == V_ASN1_OCTET_STRING) {
            const ASN1_OCTET_STRING* s = id->value.octet_string;
            out.local_key_ids.emplace_back(ASN1_STRING_get0_data(s), ASN1_STRING_get0_data(s) + ASN1_STRING_length(s));
        }
    }
    if (char* name = PKCS12_get_friendlyname(const_cast<PKCS12_SAFEBAG*>(bag))) {
        out.friendly_name = name;
        OPENSSL_free(name);
    }
    switch (PKCS12_SAFEBAG_get_nid(bag)) {
        case NID_pkcs8ShroudedKeyBag: {
            PKCS8_PRIV_KEY_INFO* info = PKCS12_decrypt_skey(bag, password.c_str(), static_cast<int>(password.size()));
            if (info == nullptr) throw std::runtime_error(openssl_error("PKCS12_decrypt_skey"));
            out.key.reset(EVP_PKCS82PKEY(info));
            PKCS8_PRIV_KEY_INFO_free(info);
            if (!out.key) throw std::runtime_error(openssl_error("EVP_PKCS82PKEY"));
            out.is_key = true;
            break;
        }
        case NID_keyBag: {
            out.key.reset(EVP_PKCS82PKEY(PKCS12_SAFEBAG_get0_p8inf(bag)));
            if (!out.key) throw std::runtime_error(openssl_error("EVP_PKCS82PKEY"));
            out.is_key = true;
            break;
        }
        case NID_certBag:
            out.cert.reset(PKCS12_SAFEBAG_get1_cert(bag));
            if (!out.cert) throw std::runtime_error(openssl_error("PKCS12_SAFEBAG_get1_cert"));
            break;
        default:
            break;
    }
    return out;
}

}  // namespace

RunResult run_with_token_args(const TestToken& token, const std::string& subcommand,
                              const std::vector<std::string>& token_args, const std::vector<std::string>& args,
                              const std::string& password, RunOptions options) {
    add_env_entries(options, token.env_for_child());
    options.env[kPasswordVariable] = password;
    std::vector<std::string> argv = {subcommand};
    argv.insert(argv.end(), token_args.begin(), token_args.end());
    argv.insert(argv.end(), {"--pin", "file:" + token.write_pin_file(), "--password",
                             std::string("env:") + kPasswordVariable});
    argv.insert(argv.end(), args.begin(), args.end());
    return run_p11vault(argv, options);
}

RunResult run_with_token(const TestToken& token, const std::string& subcommand, const std::vector<std::string>& args,
                         const std::string& password, RunOptions options) {
    return run_with_token_args(token, subcommand, token.cli_token_args(), args, password, std::move(options));
}

RunResult backup(const TestToken& token, const std::string& out, const std::vector<std::string>& args,
                 const std::string& password, bool fast) {
    std::vector<std::string> all = {"--out", out};
    if (fast && std::find(args.begin(), args.end(), "--iter") == args.end())
        all.insert(all.end(), {"--iter", kFastIterations});
    all.insert(all.end(), args.begin(), args.end());
    return run_with_token(token, "backup", all, password);
}

RunResult restore(const TestToken& token, const std::string& in, const std::vector<std::string>& args,
                  const std::string& password) {
    std::vector<std::string> all = {"--in", in};
    all.insert(all.end(), args.begin(), args.end());
    return run_with_token(token, "restore", all, password);
}

std::size_t occurrences(const std::string& text, const std::string& part) {
    std::size_t count = 0;
    for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
    return count;
}

nlohmann::json stdout_json(const RunResult& result) {
    nlohmann::json document;
    try {
        document = nlohmann::json::parse(result.out);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "stdout is not one JSON document (" << e.what() << "):\n" << result.out << "\nstderr:\n"
                      << result.err;
        return nlohmann::json();
    }
    return document;
}

std::string hex(const pkcs11::Bytes& bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (std::uint8_t b : bytes) {
        out += digits[b >> 4];
        out += digits[b & 0xf];
    }
    return out;
}

pkcs11::Bytes bytes_from_hex(const std::string& text) {
    if (text.size() % 2 != 0) throw std::invalid_argument("odd number of hex digits: " + text);
    pkcs11::Bytes out;
    for (std::size_t i = 0; i < text.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(std::stoul(text.substr(i, 2), nullptr, 16)));
    return out;
}

std::string pct_bytes(const pkcs11::Bytes& bytes) {
    std::string out;
    for (std::uint8_t b : bytes) out += "%" + hex(pkcs11::Bytes{b});
    return out;
}

std::string pct_text(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') out += static_cast<char>(c);
        else out += "%" + hex(pkcs11::Bytes{c});
    }
    return out;
}

std::string spki_sha256_hex(const EVP_PKEY* key) {
    pkcs11::Bytes der = spki_der(key);
    return sha256_hex(std::string(der.begin(), der.end()));
}

std::vector<std::string> token_args_with_uri(const TestToken& token, const std::string& uri) {
    std::vector<std::string> args = {"--module", token.module_path()};
    if (token.module_init()) args.insert(args.end(), {"--module-init", *token.module_init()});
    args.insert(args.end(), {"--token", uri});
    return args;
}

std::string sha256_hex(const std::string& data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error(openssl_error("EVP_Digest"));
    return hex(pkcs11::Bytes(digest, digest + size));
}

bool file_exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

void write_text(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
    if (!out) throw std::runtime_error("cannot write " + path);
}

unsigned file_mode(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw std::runtime_error("cannot stat " + path);
    return st.st_mode & 07777;
}

std::vector<std::string> directory_entries(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) out.push_back(entry.path().filename());
    std::sort(out.begin(), out.end());
    return out;
}

RunResult run_tool(const TestToken& token, const std::vector<std::string>& argv, const std::string& password) {
    RunOptions options;
    add_env_entries(options, token.env_for_child());
    options.env[kPasswordVariable] = password;
    return run(argv, options);
}

RunResult run_tool(const std::vector<std::string>& argv, const std::string& password) {
    RunOptions options;
    options.env[kPasswordVariable] = password;
    return run(argv, options);
}

RunResult openssl_pkcs12_info(const std::string& path, const std::string& password,
                              const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {"openssl", "pkcs12", "-info", "-nodes", "-in", path, "-passin",
                                     std::string("env:") + kPasswordVariable};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_tool(argv, password);
}

std::vector<const P12Bag*> P12File::keys() const {
    std::vector<const P12Bag*> out;
    for (const auto& bag : bags)
        if (bag.is_key) out.push_back(&bag);
    return out;
}

std::vector<const P12Bag*> P12File::certificates() const {
    std::vector<const P12Bag*> out;
    for (const auto& bag : bags)
        if (bag.cert) out.push_back(&bag);
    return out;
}

const P12Bag* P12File::find_certificate(const X509* cert) const {
    for (const auto& bag : bags)
        if (bag.cert && X509_cmp(bag.cert.get(), cert) == 0) return &bag;
    return nullptr;
}

P12File read_p12(const std::string& path, const std::string& password) {
    load_providers();
    const std::string data = read_text(path);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
    std::unique_ptr<PKCS12, decltype(&PKCS12_free)> p12(d2i_PKCS12(nullptr, &p, static_cast<long>(data.size())),
                                                       &PKCS12_free);
    if (!p12) throw std::runtime_error(openssl_error("d2i_PKCS12 " + path));
    // An empty password has two encodings: BMPString 00 00, and none at all (pyca's
    // NoEncryption, OpenSSL with a NULL password); PKCS12_parse tries both too.
    if (PKCS12_mac_present(p12.get()) &&
        PKCS12_verify_mac(p12.get(), password.c_str(), static_cast<int>(password.size())) != 1 &&
        !(password.empty() && PKCS12_verify_mac(p12.get(), nullptr, 0) == 1))
        throw std::runtime_error(openssl_error("PKCS12_verify_mac " + path));
    STACK_OF(PKCS7)* safes = PKCS12_unpack_authsafes(p12.get());
    if (safes == nullptr) throw std::runtime_error(openssl_error("PKCS12_unpack_authsafes"));
    P12File out;
    std::string failure;
    for (int i = 0; i < sk_PKCS7_num(safes) && failure.empty(); ++i) {
        PKCS7* safe = sk_PKCS7_value(safes, i);
        STACK_OF(PKCS12_SAFEBAG)* bags = nullptr;
        const int type = OBJ_obj2nid(safe->type);
        if (type == NID_pkcs7_data) bags = PKCS12_unpack_p7data(safe);
        else if (type == NID_pkcs7_encrypted)
            bags = PKCS12_unpack_p7encdata(safe, password.c_str(), static_cast<int>(password.size()));
        if (bags == nullptr) {
            failure = openssl_error("unpacking safe " + std::to_string(i));
            break;
        }
        try {
            for (int j = 0; j < sk_PKCS12_SAFEBAG_num(bags); ++j)
                out.bags.push_back(read_bag(sk_PKCS12_SAFEBAG_value(bags, j), password));
        } catch (const std::exception& e) {
            failure = e.what();
        }
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    }
    sk_PKCS7_pop_free(safes, PKCS7_free);
    if (!failure.empty()) throw std::runtime_error(failure);
    return out;
}

std::vector<CK_OBJECT_HANDLE> find_objects(pkcs11::Session& session, CK_OBJECT_CLASS object_class,
                                           const std::optional<pkcs11::Bytes>& id) {
    pkcs11::AttributeTemplate match;
    match.add_class(object_class);
    if (id) match.add_bytes(CKA_ID, *id);
    return session.find(match);
}

CK_OBJECT_HANDLE find_one(pkcs11::Session& session, CK_OBJECT_CLASS object_class, const pkcs11::Bytes& id) {
    auto found = find_objects(session, object_class, id);
    if (found.size() != 1)
        throw std::runtime_error("expected one object of class " + std::to_string(object_class) + " with id " +
                                 hex(id) + ", found " + std::to_string(found.size()));
    return found.front();
}

X509Ptr certificate_from_token(pkcs11::Session& session, CK_OBJECT_HANDLE certificate) {
    auto der = session.get_bytes(certificate, CKA_VALUE);
    if (!der) throw std::runtime_error("certificate without CKA_VALUE");
    const unsigned char* p = der->data();
    X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
    if (!cert) throw std::runtime_error(openssl_error("d2i_X509"));
    return cert;
}

std::string label_of(pkcs11::Session& session, CK_OBJECT_HANDLE object) {
    auto value = session.get_bytes(object, CKA_LABEL);
    return value ? std::string(value->begin(), value->end()) : std::string();
}

pkcs11::Bytes id_of(pkcs11::Session& session, CK_OBJECT_HANDLE object) {
    return session.get_bytes(object, CKA_ID).value_or(pkcs11::Bytes{});
}

CK_KEY_TYPE key_type_of(pkcs11::Session& session, CK_OBJECT_HANDLE object) {
    auto value = session.get_ulong(object, CKA_KEY_TYPE);
    if (!value) throw std::runtime_error("object without CKA_KEY_TYPE");
    return *value;
}

std::size_t count_class(const std::vector<ObjectSummary>& objects, CK_OBJECT_CLASS object_class) {
    return static_cast<std::size_t>(std::count_if(objects.begin(), objects.end(),
                                                  [&](const ObjectSummary& o) { return o.object_class == object_class; }));
}

bool token_key_signs_for(pkcs11::Session& session, CK_OBJECT_HANDLE private_key, EVP_PKEY* verifier) {
    static const std::string message = "p11vault test message: the CA goes on using its keys";
    const auto* data = reinterpret_cast<const std::uint8_t*>(message.data());
    std::span<const std::uint8_t> span(data, message.size());
    pkcs11::Bytes signature = sign_for_openssl(session, private_key, key_type_of(session, private_key), span);
    return openssl_verify(verifier, span, signature);
}

std::vector<PkeyPtr> private_keys_in_pem(const std::string& pem) {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    std::vector<PkeyPtr> out;
    while (EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(key);
    ERR_clear_error();
    return out;
}

std::vector<X509Ptr> certificates_in_pem(const std::string& pem) {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    std::vector<X509Ptr> out;
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(cert);
    ERR_clear_error();
    return out;
}

HostCredential make_host_credential(const std::string& dir, const std::string& name, const std::string& algorithm) {
    HostCredential out;
    EVP_PKEY* key = algorithm == "EC" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                      : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
    if (key == nullptr) throw std::runtime_error(openssl_error("EVP_PKEY_Q_keygen"));
    out.key.reset(key);
    IssuedCert issued = TestCa::instance().issue(out.key.get(), name);
    out.cert = std::move(issued.cert);
    out.key_path = dir + "/" + name + ".key";
    out.cert_path = dir + "/" + name + ".pem";
    BioPtr bio(BIO_new_file(out.key_path.c_str(), "w"));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), out.key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
        throw std::runtime_error(openssl_error("writing " + out.key_path));
    bio.reset();
    write_text(out.cert_path, issued.pem);
    return out;
}

void expect_every_key_signs(const TestToken& token, const std::string& file, const std::string& password,
                            const nlohmann::json& report, std::size_t expected_keys) {
    ASSERT_EQ(report.at("keys").size(), expected_keys) << report.dump(2);
    const P12File parsed = read_p12(file, password);
    auto session = token.open_session();
    for (const auto& key : report.at("keys")) {
        SCOPED_TRACE(key.dump());
        EXPECT_EQ(key.at("status"), "restored");
        const X509* cert = nullptr;
        for (const P12Bag* bag : parsed.certificates())
            if (spki_sha256_hex(X509_get0_pubkey(bag->cert.get())) == key.at("spki_sha256")) cert = bag->cert.get();
        ASSERT_NE(cert, nullptr) << "no certificate in the file for this key";
        // The key is found by the CKA_ID the report gives: the file's localKeyID.
        const pkcs11::Bytes id = bytes_from_hex(key.at("id"));
        const auto handles = find_objects(*session, CKO_PRIVATE_KEY, id);
        ASSERT_EQ(handles.size(), 1u);
        EXPECT_EQ(label_of(*session, handles[0]), key.at("label"));
        EXPECT_TRUE(token_key_signs_for(*session, handles[0], X509_get0_pubkey(cert)));
    }
}


}  // namespace p11vault::testing
