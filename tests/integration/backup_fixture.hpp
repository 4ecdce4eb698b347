// SPDX-License-Identifier: Apache-2.0
// The fixture of the `p11vault backup` tests (backup_test.cpp, backup_backend_test.cpp):
// a throw-away token of the test's backend, keys and certificates made on it, and checks
// that a key in a backup file is that token's key with its attributes.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {

// What the backend is measured to do (docs/extraction.md): NSS softoken wraps
// private keys with CKM_AES_CBC_PAD, SoftHSM only with AES key wrap.
inline std::string expected_backup_path(Backend backend) { return backend == Backend::nss ? "token-wrap" : "host-reencrypt"; }

class BackupTest : public ::testing::TestWithParam<Backend> {
protected:
    BackupTest() : token_(GetParam()) {}

    std::string path(const std::string& name) const { return token_.dir() + "/" + name; }

    // A key made on the token, its certificate (from the TestCa, stored with the key's
    // CKA_ID and CKA_LABEL) and its public key as read from the token.
    struct Made {
        TestKey key;
        IssuedCert cert;
        PkeyPtr public_key;
    };
    Made make_rsa(unsigned bits, pkcs11::Bytes id, std::string label, bool with_cert = true, KeyFlags flags = {}) {
        auto session = token_.open_session();
        Made made;
        made.key = generate_rsa(*session, bits, std::move(id), std::move(label), flags);
        made.public_key = public_key_from_token(*session, made.key.public_key);
        if (with_cert) made.cert = certify(*session, made.key);
        return made;
    }
    Made make_ec(const std::string& curve, pkcs11::Bytes id, std::string label, bool with_cert = true,
                 KeyFlags flags = {}) {
        auto session = token_.open_session();
        Made made;
        made.key = generate_ec(*session, curve, std::move(id), std::move(label), flags);
        made.public_key = public_key_from_token(*session, made.key.public_key);
        if (with_cert) made.cert = certify(*session, made.key);
        return made;
    }

    // The one key bag of `file` whose localKeyID is `id`.
    static const P12Bag* key_bag(const P12File& file, const pkcs11::Bytes& id) {
        const P12Bag* found = nullptr;
        for (const P12Bag* bag : file.keys()) {
            if (std::find(bag->local_key_ids.begin(), bag->local_key_ids.end(), id) == bag->local_key_ids.end()) continue;
            EXPECT_EQ(found, nullptr) << "two key bags with localKeyID " << hex(id);
            found = bag;
        }
        return found;
    }

    // The JSON report of the key with CKA_ID `id`.
    static nlohmann::json key_report(const nlohmann::json& document, const pkcs11::Bytes& id) {
        for (const auto& key : document.at("keys"))
            if (key.at("id") == hex(id)) return key;
        ADD_FAILURE() << "no key " << hex(id) << " in " << document.dump(2);
        return nlohmann::json::object();
    }

    // Asserts that `made` is in the file with the right attributes, as the token's key,
    // with its certificate next to it.
    static void expect_key_in_file(const P12File& file, const Made& made) {
        SCOPED_TRACE("key " + hex(made.key.id) + " \"" + made.key.label + "\"");
        const P12Bag* bag = key_bag(file, made.key.id);
        ASSERT_NE(bag, nullptr) << "no key bag with localKeyID " << hex(made.key.id);
        EXPECT_EQ(bag->local_key_ids, std::vector<pkcs11::Bytes>{made.key.id});
        EXPECT_EQ(bag->friendly_name, made.key.label);
        ASSERT_TRUE(bag->key);
        EXPECT_EQ(EVP_PKEY_eq(bag->key.get(), made.public_key.get()), 1) << "the key in the file is not the token's key";
        if (made.cert.cert) {
            const P12Bag* cert = file.find_certificate(made.cert.cert.get());
            ASSERT_NE(cert, nullptr) << "the key's certificate is not in the file";
            EXPECT_EQ(cert->local_key_ids, std::vector<pkcs11::Bytes>{made.key.id});
            EXPECT_EQ(cert->friendly_name, made.key.label);
            EXPECT_EQ(X509_check_private_key(cert->cert.get(), bag->key.get()), 1);
        }
    }

    TestToken token_;
};

}  // namespace p11vault::testing
