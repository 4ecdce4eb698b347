// SPDX-License-Identifier: Apache-2.0
// Helpers for the backup/restore integration tests: run p11vault against a TestToken the
// way an operator would (token options, `--pin file:`, `--password env:P11VAULT_TEST_PW`),
// look at PKCS#12 files with OpenSSL in-process and with the openssl command, and find
// objects on a token.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "pkcs11/session.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {

// The environment variable the file password is passed in (`--password env:...`).
inline constexpr const char* kPasswordVariable = "P11VAULT_TEST_PW";
// The default file password of the tests.
inline constexpr const char* kTestPassword = "Tr0ub4dor&3 backup password";
// The KDF iteration count used where it does not matter (speed).
inline constexpr const char* kFastIterations = "2000";

// `p11vault SUBCOMMAND <token.cli_token_args()> --pin file:PINFILE --password env:P11VAULT_TEST_PW ARGS...`
// with the token's environment and `password` in $P11VAULT_TEST_PW.
RunResult run_with_token(const TestToken& token, const std::string& subcommand, const std::vector<std::string>& args,
                         const std::string& password = kTestPassword, RunOptions options = {});
// The same with the token options given explicitly (e.g. --token URI instead of --token-label).
RunResult run_with_token_args(const TestToken& token, const std::string& subcommand,
                              const std::vector<std::string>& token_args, const std::vector<std::string>& args,
                              const std::string& password = kTestPassword, RunOptions options = {});

// `p11vault backup ... --out OUT ARGS...`; adds `--iter 2000` unless `fast` is false or
// ARGS hold --iter.
RunResult backup(const TestToken& token, const std::string& out, const std::vector<std::string>& args,
                 const std::string& password = kTestPassword, bool fast = true);
// `p11vault restore ... --in IN ARGS...`.
RunResult restore(const TestToken& token, const std::string& in, const std::vector<std::string>& args,
                  const std::string& password = kTestPassword);

// How often `part` occurs in `text` (overlapping occurrences counted).
std::size_t occurrences(const std::string& text, const std::string& part);

// The one JSON document on stdout; a failed expectation (and null) when it is not one.
nlohmann::json stdout_json(const RunResult& result);

// "01ab" for {0x01, 0xab}, and back (as `--json` reports CKA_IDs).
std::string hex(const pkcs11::Bytes& bytes);
pkcs11::Bytes bytes_from_hex(const std::string& text);
// RFC 7512 percent-encoding of every byte ("%01%ab"), and of text (unreserved kept).
std::string pct_bytes(const pkcs11::Bytes& bytes);
std::string pct_text(const std::string& text);
// SHA-256 (hex) of a key's DER SubjectPublicKeyInfo.
std::string spki_sha256_hex(const EVP_PKEY* key);
// Token options selecting the token by `--token URI` instead of --token-label.
std::vector<std::string> token_args_with_uri(const TestToken& token, const std::string& uri);
std::string sha256_hex(const std::string& data);

// Files.
bool file_exists(const std::string& path);
std::string read_text(const std::string& path);
void write_text(const std::string& path, const std::string& data);
unsigned file_mode(const std::string& path);  // permission bits
// Entries of a directory (names), sorted.
std::vector<std::string> directory_entries(const std::string& dir);

// Runs a tool (not p11vault) with the token's environment and $P11VAULT_TEST_PW = password.
RunResult run_tool(const TestToken& token, const std::vector<std::string>& argv,
                   const std::string& password = kTestPassword);
RunResult run_tool(const std::vector<std::string>& argv, const std::string& password = kTestPassword);

// `openssl pkcs12 -info -nodes -passin env:P11VAULT_TEST_PW -in PATH [EXTRA...]` (no -legacy).
RunResult openssl_pkcs12_info(const std::string& path, const std::string& password = kTestPassword,
                              const std::vector<std::string>& extra = {});

// One bag of a PKCS#12 file, read in-process with OpenSSL (default + legacy providers).
struct P12Bag {
    bool is_key = false;
    std::vector<pkcs11::Bytes> local_key_ids;
    std::optional<std::string> friendly_name;
    PkeyPtr key;   // key bags
    X509Ptr cert;  // certificate bags
};
struct P12File {
    std::vector<P12Bag> bags;
    std::vector<const P12Bag*> keys() const;
    std::vector<const P12Bag*> certificates() const;
    // The certificate bag holding `cert` (same DER), or null.
    const P12Bag* find_certificate(const X509* cert) const;
};
// Verifies the MAC and decrypts every bag; throws std::runtime_error on any failure.
P12File read_p12(const std::string& path, const std::string& password = kTestPassword);

// Token objects.
std::vector<CK_OBJECT_HANDLE> find_objects(pkcs11::Session& session, CK_OBJECT_CLASS object_class,
                                           const std::optional<pkcs11::Bytes>& id = std::nullopt);
// The one object of that class and id; throws when there is not exactly one.
CK_OBJECT_HANDLE find_one(pkcs11::Session& session, CK_OBJECT_CLASS object_class, const pkcs11::Bytes& id);
X509Ptr certificate_from_token(pkcs11::Session& session, CK_OBJECT_HANDLE certificate);
std::string label_of(pkcs11::Session& session, CK_OBJECT_HANDLE object);
pkcs11::Bytes id_of(pkcs11::Session& session, CK_OBJECT_HANDLE object);
CK_KEY_TYPE key_type_of(pkcs11::Session& session, CK_OBJECT_HANDLE object);
// Counts of a class among ObjectSummary lists.
std::size_t count_class(const std::vector<ObjectSummary>& objects, CK_OBJECT_CLASS object_class);

// Signs with the token key and verifies with `verifier` (sign_for_openssl/openssl_verify).
bool token_key_signs_for(pkcs11::Session& session, CK_OBJECT_HANDLE private_key, EVP_PKEY* verifier);

// Asserts (gtest) that a `restore --json` report lists `expected_keys` keys, each
// restored, found on the token by the CKA_ID and label the report gives, and signing for
// the certificate in `file` that has the same public key.
void expect_every_key_signs(const TestToken& token, const std::string& file, const std::string& password,
                            const nlohmann::json& report, std::size_t expected_keys);

// Every PEM private key in a text (e.g. `openssl pkcs12 -nodes` output), in order.
std::vector<PkeyPtr> private_keys_in_pem(const std::string& pem);
// Every PEM certificate in a text.
std::vector<X509Ptr> certificates_in_pem(const std::string& pem);

// A host key and a certificate for it from the TestCa, written as PEM files
// DIR/NAME.key and DIR/NAME.pem (key unencrypted PKCS#8). Algorithm as for
// `openssl genpkey`: "RSA" (2048) or "EC" (P-256).
struct HostCredential {
    std::string key_path;
    std::string cert_path;
    PkeyPtr key;
    X509Ptr cert;
};
HostCredential make_host_credential(const std::string& dir, const std::string& name, const std::string& algorithm);

}  // namespace p11vault::testing
