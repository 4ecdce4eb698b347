// SPDX-License-Identifier: Apache-2.0
// The fixture of the restore tests (restore_test.cpp, restore_conflict_test.cpp): a
// throw-away token per backend, files made by `openssl pkcs12 -export` (openssl_export) or
// written in process (write_test_pfx, for layouts the tools do not make), and checks that a restored key signs for its certificate and that each object
// is on the token once.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <openssl/pkcs12.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_pfx.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {

// The import path measured for a PBES2/AES file (docs/extraction.md).
inline std::string expected_restore_path(Backend backend) { return backend == Backend::nss ? "token-unwrap" : "host-decrypt"; }

// A PKCS#12 file made by `openssl pkcs12 -export` from a host key and a TestCa certificate.
struct SourceFile {
    std::string path;
    HostCredential credential;
    pkcs11::Bytes id;   // the localKeyID OpenSSL chose (SHA-1 of the certificate)
    std::string label;  // -name
};

inline SourceFile openssl_export(const std::string& dir, const std::string& name, const std::string& algorithm,
                                 const std::vector<std::string>& extra = {}) {
    SourceFile file;
    file.credential = make_host_credential(dir, name, algorithm);
    file.path = dir + "/" + name + ".p12";
    file.label = name + " label";
    std::vector<std::string> argv = {"openssl", "pkcs12", "-export", "-inkey", file.credential.key_path, "-in",
                                     file.credential.cert_path, "-name", file.label, "-out", file.path, "-passout",
                                     std::string("env:") + kPasswordVariable};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const RunResult made = run_tool(argv);
    if (made.exit_code != 0) throw std::runtime_error("openssl pkcs12 -export failed: " + made.err);
    const P12File parsed = read_p12(file.path);
    if (parsed.keys().size() != 1 || parsed.keys()[0]->local_key_ids.size() != 1)
        throw std::runtime_error("unexpected openssl output");
    file.id = parsed.keys()[0]->local_key_ids[0];
    return file;
}

class RestoreTest : public ::testing::TestWithParam<Backend> {
protected:
    RestoreTest() : token_(GetParam()) {}

    std::string path(const std::string& name) const { return token_.dir() + "/" + name; }

    // Something on the token before the run, so "unchanged" is not just "empty".
    void add_bystander() {
        auto session = token_.open_session();
        const TestKey key = generate_ec(*session, "P-256", {0xbb}, "bystander");
        certify(*session, key);
    }

    // The restored private key `id` signs what the certificate's public key verifies.
    void expect_signs(const pkcs11::Bytes& id, const X509* cert) {
        auto session = token_.open_session();
        const auto keys = find_objects(*session, CKO_PRIVATE_KEY, id);
        ASSERT_EQ(keys.size(), 1u) << "private keys with id " << hex(id);
        EXPECT_TRUE(token_key_signs_for(*session, keys[0], X509_get0_pubkey(cert)))
            << "the restored key " << hex(id) << " does not sign for its certificate";
    }

    // Every object class with id `id`, once each.
    void expect_objects_once(const pkcs11::Bytes& id) {
        auto session = token_.open_session();
        EXPECT_EQ(find_objects(*session, CKO_PRIVATE_KEY, id).size(), 1u);
        EXPECT_EQ(find_objects(*session, CKO_PUBLIC_KEY, id).size(), 1u);
        EXPECT_EQ(find_objects(*session, CKO_CERTIFICATE, id).size(), 1u);
    }

    TestToken token_;
};

}  // namespace p11vault::testing
