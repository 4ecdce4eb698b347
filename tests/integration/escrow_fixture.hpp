// SPDX-License-Identifier: Apache-2.0
// The fixture of the escrow tests (issue 22): a source token with a key to back up, a
// target token to restore into, and recovery officers, each with a key file, a
// certificate (keyEncipherment for RSA, keyAgreement for EC) and the same key on an
// officer token of their own (imported by p11vault restore: sensitive, not extractable).
#pragma once

#include <gtest/gtest.h>

#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include <map>
#include <sstream>
#include <stdexcept>
#include <nlohmann/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {

struct Officer {
    std::string name;       // the key's label on the officer token
    std::string key_path;   // PEM private key
    std::string cert_path;  // PEM certificate
    std::unique_ptr<TestToken> token;
    std::string uri() const { return "pkcs11:token=" + token->label() + ";object=" + name; }
    // The officer's certificate, from cert_path.
    X509Ptr certificate() const {
        std::vector<X509Ptr> certs = certificates_in_pem(read_text(cert_path));
        if (certs.empty()) throw std::runtime_error("no certificate in " + cert_path);
        return std::move(certs.front());
    }
    // SHA-256 (hex) of the certificate's DER: how records name the officer.
    std::string certificate_sha256() const {
        const pkcs11::Bytes der = to_der(certificate().get());
        return sha256_hex(std::string(der.begin(), der.end()));
    }
};

// The last record of a --record file.
inline nlohmann::json last_record(const std::string& path) {
    std::istringstream in(read_text(path));
    std::string line, last;
    while (std::getline(in, line))
        if (!line.empty()) last = line;
    return nlohmann::json::parse(last);
}

// A self-signed officer certificate: keyUsage as given, valid from now + `from_days` to now
// + `to_days`.
inline X509Ptr officer_certificate(EVP_PKEY* key, const std::string& name, const char* key_usage, long from_days,
                                   long to_days) {
    X509Ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), static_cast<long>(std::hash<std::string>{}(name) & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), from_days * 86400);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), to_days * 86400);
    X509_set_pubkey(cert.get(), key);
    X509_NAME* subject = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(name.c_str()), -1,
                               -1, 0);
    X509_set_issuer_name(cert.get(), subject);
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
    for (const auto& [nid, value] : std::vector<std::pair<int, std::string>>{
             {NID_key_usage, std::string("critical,") + key_usage}, {NID_subject_key_identifier, "hash"}}) {
        X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
        if (extension == nullptr) throw std::runtime_error("officer_certificate: extension");
        X509_add_ext(cert.get(), extension, -1);
        X509_EXTENSION_free(extension);
    }
    if (X509_sign(cert.get(), key, EVP_sha256()) <= 0) throw std::runtime_error("officer_certificate: sign");
    return cert;
}

class EscrowTest : public ::testing::Test {
protected:
    EscrowTest() : source_(Backend::softhsm, "escrow-source"), target_(Backend::softhsm, "escrow-target") {}

    void SetUp() override {
        auto session = source_.open_session();
        key_ = generate_rsa(*session, 2048, {0x42}, "escrowed signer");
        certify(*session, key_);
        pin_file_ = source_.write_pin_file();  // every TestToken has the same user PIN
    }

    std::string path(const std::string& name) const { return source_.dir() + "/" + name; }

    // An officer: "RSA" or "EC"; `on_token` puts the key on a token of its own.
    Officer make_officer(const std::string& name, const std::string& algorithm, bool on_token = true,
                         const char* key_usage = nullptr, long from_days = -1, long to_days = 30) {
        Officer officer;
        officer.name = name;
        PkeyPtr key(algorithm == "RSA" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))
                                       : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
        if (!key) throw std::runtime_error("officer key generation");
        if (key_usage == nullptr) key_usage = algorithm == "RSA" ? "keyEncipherment" : "keyAgreement";
        X509Ptr cert = officer_certificate(key.get(), name, key_usage, from_days, to_days);
        officer.key_path = path(name + ".key");
        officer.cert_path = path(name + ".pem");
        write_pem(officer.key_path, [&](BIO* bio) {
            return PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
        });
        write_pem(officer.cert_path, [&](BIO* bio) { return PEM_write_bio_X509(bio, cert.get()); });
        if (on_token) {
            officer.token = std::make_unique<TestToken>(Backend::softhsm, "KRA-" + name);
            PKCS12* p12 = PKCS12_create(kTestPassword, name.c_str(), key.get(), cert.get(), nullptr, 0, 0, 0, 0, 0);
            if (p12 == nullptr) throw std::runtime_error("PKCS12_create");
            const std::string p12_path = path(name + ".p12");
            BIO* bio = BIO_new_file(p12_path.c_str(), "wb");
            i2d_PKCS12_bio(bio, p12);
            BIO_free(bio);
            PKCS12_free(p12);
            RunResult imported = restore(*officer.token, p12_path, {});
            if (imported.exit_code != 0) throw std::runtime_error("importing the officer key: " + imported.err);
        }
        return officer;
    }

    template <typename Write>
    static void write_pem(const std::string& file, Write write) {
        BIO* bio = BIO_new_file(file.c_str(), "w");
        if (bio == nullptr || write(bio) != 1) throw std::runtime_error("writing " + file);
        BIO_free(bio);
    }

    // p11vault ARGS with the tokens' environment and `env` added.
    RunResult p11vault(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) const {
        std::vector<std::string> argv{P11VAULT_BINARY};
        argv.insert(argv.end(), args.begin(), args.end());
        RunOptions options;
        add_env_entries(options, source_.env_for_child());
        for (const auto& [name, value] : env) options.env[name] = value;
        return run(argv, options);
    }

    std::vector<std::string> with_token(const TestToken& token, std::vector<std::string> args) const {
        std::vector<std::string> out = token.cli_token_args();
        out.insert(out.end(), {"--pin", "file:" + pin_file_});
        out.insert(out.end(), args.begin(), args.end());
        return out;
    }

    RunResult backup_to(const std::string& out, const std::vector<const Officer*>& officers,
                        std::vector<std::string> extra = {}) const {
        std::vector<std::string> args{"backup"};
        for (const auto& arg : with_token(source_, {"--all", "--iter", kFastIterations, "--out", out}))
            args.push_back(arg);
        for (const Officer* officer : officers) args.insert(args.end(), {"--recipient", officer->cert_path});
        args.insert(args.end(), extra.begin(), extra.end());
        return p11vault(args);
    }

    // restore --in FILE into the target with these officers' keys and `extra`.
    RunResult restore_with(const std::string& file, const std::vector<const Officer*>& officers,
                           std::vector<std::string> extra = {}, const std::string& command = "restore") const {
        std::vector<std::string> args{command};
        // verify is not given the target: it would compare the file with it.
        const std::vector<std::string> input{"--in", file, "--recipient-pin", "file:" + pin_file_};
        if (command == "verify") {
            args.insert(args.end(), input.begin(), input.end());
            args.insert(args.end(), {"--recipient-module", target_.module_path()});
        } else {
            for (const auto& arg : with_token(target_, input)) args.push_back(arg);
        }
        for (const Officer* officer : officers) args.insert(args.end(), {"--recipient-key", officer->uri()});
        args.insert(args.end(), extra.begin(), extra.end());
        return p11vault(args);
    }

    // The target holds the source's key (by CKA_ID) and it signs for the source's certificate.
    void expect_key_restored() const {
        auto session = target_.open_session();
        EXPECT_EQ(find_objects(*session, CKO_PRIVATE_KEY, pkcs11::Bytes{0x42}).size(), 1u);
    }

    TestToken source_;
    TestToken target_;
    TestKey key_;
    std::string pin_file_;
};

}  // namespace p11vault::testing
