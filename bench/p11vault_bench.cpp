// SPDX-License-Identifier: Apache-2.0
// p11vault-bench: fixtures and the token floor for scripts/bench.
//
//   p11vault-bench make-p12 --rsa N --ec M --iter I --out FILE [--tag T]  (password: $BENCH_PASSWORD)
//       ids are T's first byte + a 2-byte index, labels "T-<n>" (default tag "bench")
//   p11vault-bench floor-restore --module M [--module-init S] --token-label L --in FILE
//   p11vault-bench floor-backup  --module M [--module-init S] --token-label L
//       (PIN: $BENCH_PIN; file password: $BENCH_PASSWORD)
//
// The floors run only the PKCS#11 calls a job cannot avoid, through p11vault's own
// layer, and print their seconds: loading and initializing the module, opening a session
// and logging in, then per key for restore one C_UnwrapKey of the private key and one
// C_CreateObject each of public key and certificate, for backup one C_WrapKey; then
// closing the session and finalizing the module. Host work (decrypting the file,
// re-encrypting) is done outside the clock, so the floor is a lower bound for any tool.
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "p11vault/error.hpp"
#include "pkcs11/module.hpp"
#include "pkcs11/session.hpp"
#include "src/keys.hpp"
#include "src/ossl.hpp"
#include "src/pkcs12/reader.hpp"
#include "src/pkcs12/writer.hpp"
#include "src/restore.hpp"
#include "src/transport.hpp"

using namespace p11vault;

namespace {

std::string arg(int argc, char** argv, const char* name, const char* fallback = nullptr) {
    for (int i = 2; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
    if (fallback == nullptr) {
        std::fprintf(stderr, "p11vault-bench: missing %s\n", name);
        std::exit(2);
    }
    return fallback;
}

SecretBytes env_secret(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr) {
        std::fprintf(stderr, "p11vault-bench: set %s\n", name);
        std::exit(2);
    }
    return SecretBytes::from_text(value);
}

// The subject (and so the issuer) names the tag: files of different tags never hold two
// certificates with the same issuer and serial, which NSS refuses to import side by side.
ossl::Cert self_signed(EVP_PKEY* key, int serial, const std::string& tag) {
    ossl::Cert cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400L * 365);
    std::string cn = tag + " key " + std::to_string(serial);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
    X509_set_pubkey(cert.get(), key);
    X509_sign(cert.get(), key, EVP_sha256());
    return cert;
}

int make_p12(int argc, char** argv) {
    int rsa = std::stoi(arg(argc, argv, "--rsa", "0"));
    int ec = std::stoi(arg(argc, argv, "--ec", "0"));
    std::uint64_t iterations = std::stoull(arg(argc, argv, "--iter", "600000"));
    std::string out = arg(argc, argv, "--out");
    std::string tag = arg(argc, argv, "--tag", "bench");
    SecretBytes password = env_secret("BENCH_PASSWORD");
    pkcs12::Writer writer(pkcs12::Profile::modern, password, iterations);
    for (int i = 0; i < rsa + ec; ++i) {
        ossl::Pkey key(i < rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))
                               : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
        ossl::Cert cert = self_signed(key.get(), i + 1, tag);
        pkcs12::EntryAttributes attributes;
        attributes.local_key_id =
            pkcs12::Bytes{static_cast<std::uint8_t>(tag[0]), static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)};
        attributes.friendly_name = tag + "-" + std::to_string(i + 1);
        writer.add_clear_key(keys::private_key_info_der(key.get()), attributes);
        writer.add_certificate(cert.get(), attributes);
    }
    pkcs12::Bytes der = writer.finish();
    FILE* f = std::fopen(out.c_str(), "wb");
    if (f == nullptr || std::fwrite(der.data(), 1, der.size(), f) != der.size() || std::fclose(f) != 0) return 1;
    return 0;
}

struct OpenedToken {
    std::shared_ptr<pkcs11::Module> module;
    std::unique_ptr<pkcs11::Session> session;
};

OpenedToken open(int argc, char** argv) {
    OpenedToken t;
    std::string init = arg(argc, argv, "--module-init", "");
    t.module = pkcs11::Module::load(arg(argc, argv, "--module"),
                                    init.empty() ? std::nullopt : std::optional<std::string>(init));
    std::string label = arg(argc, argv, "--token-label");
    for (CK_SLOT_ID slot : t.module->slots(true))
        if (t.module->token_info(slot).label == label) t.session = std::make_unique<pkcs11::Session>(t.module, slot, true);
    if (!t.session) throw Error(ErrorKind::token, "no token " + label);
    t.session->login(env_secret("BENCH_PIN"));
    return t;
}

// Closes the session and finalizes the module, inside the floor's clock like opening.
void close(OpenedToken& token) {
    token.session.reset();
    token.module.reset();
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int floor_restore(int argc, char** argv) {
    pkcs12::Bytes data = pkcs12::read_file(arg(argc, argv, "--in"), 1u << 30);
    SecretBytes password = env_secret("BENCH_PASSWORD");
    pkcs12::Limits limits;
    limits.max_objects = limits.max_bags;  // the bench's own files, of up to thousands of keys
    pkcs12::Reader reader(std::move(data), password, limits);
    auto opening = std::chrono::steady_clock::now();
    OpenedToken token = open(argc, argv);
    const double open_seconds = seconds_since(opening);
    pkcs11::Session& session = *token.session;
    // Host preparation, outside the clock.
    std::vector<std::uint8_t> random = ossl::random_bytes(32);
    SecretBytes ephemeral(random.data(), random.size());
    struct Prepared {
        std::vector<std::uint8_t> wrapped;
        ossl::Pkey key;
        X509* cert;
    };
    std::vector<Prepared> prepared;
    const auto& contents = reader.contents();
    for (std::size_t i = 0; i < contents.keys.size(); ++i) {
        ossl::Pkey key = reader.private_key(contents.keys[i]);
        SecretBytes der = keys::private_key_info_der(key.get());
        prepared.push_back({transport::aes_wrap_pad(ephemeral, der), std::move(key),
                            contents.certificates.at(i).certificate.get()});
    }
    auto start = std::chrono::steady_clock::now();
    {
        pkcs11::ScopedObject unwrapping =
            transport::import_session_key(session, CKK_AES, ephemeral, transport::KeyUse::unwrap);
        for (std::size_t i = 0; i < prepared.size(); ++i) {
            pkcs11::Bytes id = {static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i), 0xfe};
            keys::KeyDescription d = keys::describe(prepared[i].key.get());
            pkcs11::AttributeTemplate priv;
            priv.add_class(CKO_PRIVATE_KEY).add_key_type(d.key_type).add_bool(CKA_TOKEN, true);
            priv.add_bool(CKA_PRIVATE, true).add_bool(CKA_SENSITIVE, true).add_bool(CKA_EXTRACTABLE, false);
            priv.add_bool(CKA_SIGN, true).add_bytes(CKA_ID, id);
            session.unwrap_key(pkcs11::Mechanism(CKM_AES_KEY_WRAP_PAD), unwrapping.get(), prepared[i].wrapped, priv);
            pkcs11::AttributeTemplate pub;
            pub.add_class(CKO_PUBLIC_KEY).add_bool(CKA_TOKEN, true).add_bool(CKA_VERIFY, true).add_bytes(CKA_ID, id);
            keys::add_public_attributes(prepared[i].key.get(), pub);
            session.create_object(pub);
            pkcs11::AttributeTemplate cert = certificate_object_template(prepared[i].cert, id, "");
            session.create_object(cert);
        }
    }
    close(token);
    std::printf("%.3f\n", open_seconds + seconds_since(start));
    return 0;
}

int floor_backup(int argc, char** argv) {
    auto start = std::chrono::steady_clock::now();
    OpenedToken token = open(argc, argv);
    pkcs11::Session& session = *token.session;
    pkcs11::AttributeTemplate match;
    match.add_class(CKO_PRIVATE_KEY);
    std::vector<CK_OBJECT_HANDLE> keys = session.find(match);
    std::vector<std::uint8_t> random = ossl::random_bytes(32);
    SecretBytes kek(random.data(), random.size());
    bool cbc = false;
    if (auto info = token.module->mechanism_info(session.slot(), CKM_AES_CBC_PAD)) cbc = (info->flags & CKF_WRAP) != 0;
    {
        pkcs11::ScopedObject wrapping = transport::import_session_key(session, CKK_AES, kek, transport::KeyUse::wrap);
        std::vector<std::uint8_t> iv(16, 0x42);
        for (CK_OBJECT_HANDLE key : keys)
            session.wrap_key(cbc ? pkcs11::Mechanism(CKM_AES_CBC_PAD, iv) : pkcs11::Mechanism(CKM_AES_KEY_WRAP_PAD),
                             wrapping.get(), key);
    }
    close(token);
    std::printf("%.3f\n", seconds_since(start));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: p11vault-bench make-p12|floor-restore|floor-backup ...\n");
        return 2;
    }
    try {
        std::string command = argv[1];
        if (command == "make-p12") return make_p12(argc, argv);
        if (command == "floor-restore") return floor_restore(argc, argv);
        if (command == "floor-backup") return floor_backup(argc, argv);
        std::fprintf(stderr, "p11vault-bench: unknown command %s\n", argv[1]);
        return 2;
    } catch (const Error& e) {
        std::fprintf(stderr, "p11vault-bench: error: %s\n", e.what());
        return static_cast<int>(e.kind());
    }
}
