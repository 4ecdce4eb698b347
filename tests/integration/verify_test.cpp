// SPDX-License-Identifier: Apache-2.0
// `p11vault verify` (issue 6, docs/cli.md), run as a script would run it: the
// built binary as a child process, on real PKCS#12 files of many producers (the corpus),
// on files built here with OpenSSL's API (a key whose certificate belongs to another key),
// on damaged files and with --record (--drill: verify_drill_test.cpp; compared with a live
// token: verify_token_test.cpp).
//
// Expected values come from elsewhere than p11vault: the corpus MANIFEST, what
// `openssl pkcs12 -info` prints for the bag attributes, and fingerprints computed by
// `openssl x509 -fingerprint -sha256` and `openssl pkey -pubout -outform DER`.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "tests/integration/verify_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;
using namespace verify_helpers;


std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << "cannot read " << path;
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::string hex_of(const std::string& bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string sha256_hex(const std::string& data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EXPECT_EQ(EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr), 1);
    return hex_of(std::string(reinterpret_cast<char*>(digest), length));
}

// "AB:CD:..." -> "abcd..."
std::string plain_hex(const std::string& fingerprint) {
    std::string out;
    for (char c : fingerprint)
        if (std::isxdigit(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool any_contains(const json& strings, const std::string& needle) {
    for (const auto& s : strings)
        if (lower(s.get<std::string>()).find(lower(needle)) != std::string::npos) return true;
    return false;
}

// `openssl pkcs12 ARGS` on a file, retrying with -legacy (RC2-40 and friends need it on 3.x).
RunResult openssl_pkcs12(const std::string& file, const std::string& password, const std::vector<std::string>& args) {
    RunOptions options;
    options.env["OPENSSL_TEST_PW"] = password;
    std::vector<std::string> argv = {"openssl", "pkcs12", "-in", file, "-passin", "env:OPENSSL_TEST_PW"};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult result = run(argv, options);
    if (result.exit_code != 0) {
        argv.insert(argv.begin() + 2, "-legacy");
        result = run(argv, options);
    }
    return result;
}

// Every PEM block of `type` ("CERTIFICATE") in `text`.
std::vector<std::string> pem_blocks(const std::string& text, const std::string& type) {
    std::vector<std::string> out;
    const std::string begin = "-----BEGIN " + type + "-----", end = "-----END " + type + "-----";
    for (std::size_t at = text.find(begin); at != std::string::npos; at = text.find(begin, at + 1)) {
        std::size_t stop = text.find(end, at);
        if (stop == std::string::npos) break;
        out.push_back(text.substr(at, stop + end.size() - at) + "\n");
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// Good files of several producers: counts, types, localKeyID and friendlyName.

struct GoodFile {
    std::string file;
    std::string password;
    std::size_t keys;
    std::size_t certificates;
    // Per key, in file order: type, localKeyID (hex) and friendlyName as
    // `openssl pkcs12 -info` / pyca show them; "" friendlyName means none.
    std::vector<std::tuple<std::string, std::string, std::string>> key_details;
};

void PrintTo(const GoodFile& file, std::ostream* out) { *out << file.file; }

const std::vector<GoodFile>& good_files() {
    static const std::vector<GoodFile> files = {
        {"windows7-certmgr-legacy.p12", "foo", 1, 1, {{"RSA-2048", "01000000", "ee6d8805-06d9-42e2-8b68-feab5ef28270"}}},
        {"windows-certmgr-pbes2-aes256-sha256.p12", "password", 1, 1,
         {{"RSA-2048", "01000000", "te-c6bda622-30a4-4ecb-a844-19ccbf12a511"}}},
        {"nss-chrome-linux-export.p12", "foo", 1, 1,
         {{"RSA-2048", "14742d528e0d0c066c3264d37e3331688b281a75", "Internet Widgits Pty Ltd"}}},
        {"macos-keychain-rsa.p12", "", 1, 1,
         {{"RSA-2048", "3939d5cbe561a3e16af98c385c4de21c7745a7db", "{79A09B06-D1D0-4CF6-A8FD-8BF16CD29742}"}}},
        {"openssl3-ec-p384.p12", "password", 1, 1, {{"EC-P384", "3da7c20d99dad49f79c3b1be658d6f84c0c8baf1", "test"}}},
        {"openssl3-ed25519.p12", "password", 1, 1, {{"Ed25519", "9876b0aedf156d097f5cefe2b7649cf04a52e010", "test"}}},
        {"openssl3-rsa-full-chain.p12", "password", 1, 3,
         {{"RSA-2048", "48cfde778040655277100b1a1f323ba42d68d61d", "test"}}},
        {"keytool-two-entries.p12", "password", 2, 6,
         {{"RSA-2048", "48cfde778040655277100b1a1f323ba42d68d61d", "test"},
          {"RSA-2048", "54696d652031373135333436353033393137", "test2"}}},
        {"rfc9579-pbmac1-sha256.p12", "1234", 1, 1, {}},
        {"unknown-key-inside-encrypted-safe.p12", "user", 1, 1, {{"RSA-1024", "37", ""}}},
        {"openssl-unicode-password.p12", "Hello, 世界", 1, 1,
         {{"EC-P256", "3f3138ecb9f145e13e90710dc128ba4e6fa09ced", ""}}},
        // friendlyName U+263A on the key (a BMPString 26 3A; pyca/cryptography reads it).
        {"pyca-unicode-friendlynames.p12", "password", 1, 3,
         {{"EC-P256", "2534f63c8f948ce54827f670d924d5fc81faa12c", "\u263a"}}},
    };
    return files;
}

class VerifyGoodFile : public ::testing::TestWithParam<GoodFile> {};

TEST_P(VerifyGoodFile, ReportsKeysCertificatesAndAttributes) {
    const GoodFile& expected = GetParam();
    const RunResult result = verify({"--in", corpus_file(expected.file), "--json"}, expected.password);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    EXPECT_EQ(document.value("format", ""), "p11vault.verify/1");
    ASSERT_EQ(document.at("keys").size(), expected.keys) << document.dump(2);
    ASSERT_EQ(document.at("certificates").size(), expected.certificates) << document.dump(2);
    for (std::size_t i = 0; i < expected.key_details.size(); ++i) {
        const auto& [type, id, name] = expected.key_details[i];
        const json& key = document.at("keys").at(i);
        EXPECT_EQ(key.at("type"), type) << "key " << i;
        EXPECT_EQ(lower(key.at("local_key_id").get<std::string>()), id) << "key " << i;
        if (name.empty()) {
            EXPECT_TRUE(key.at("friendly_name").is_null()) << "key " << i << ": " << key.dump();
        } else {
            EXPECT_EQ(key.at("friendly_name"), name) << "key " << i << ": " << key.dump();
        }
        EXPECT_TRUE(key.at("supported").get<bool>()) << key.dump();
        // Every key of these files has its certificate in the file.
        EXPECT_TRUE(key.at("certificate").is_number()) << "key " << i << " not paired: " << key.dump();
    }
    for (const auto& key : document.at("keys")) EXPECT_EQ(plain_hex(key.value("spki_sha256", "")).size(), 64u);
    for (const auto& cert : document.at("certificates"))
        EXPECT_EQ(plain_hex(cert.value("sha256_fingerprint", "")).size(), 64u) << cert.dump();
}

INSTANTIATE_TEST_SUITE_P(Producers, VerifyGoodFile, ::testing::ValuesIn(good_files()),
                         [](const ::testing::TestParamInfo<GoodFile>& info) {
                             std::string name = info.param.file.substr(0, info.param.file.find('.'));
                             for (char& c : name)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return name;
                         });

// ---------------------------------------------------------------------------------------
// Fingerprints agree with what openssl prints.

class VerifyFingerprints : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(VerifyFingerprints, CertificateSha256MatchesOpensslX509) {
    const auto& [file, password] = GetParam();
    const RunResult result = verify({"--in", corpus_file(file), "--json"}, password);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);

    const RunResult certs = openssl_pkcs12(corpus_file(file), password, {"-nokeys"});
    ASSERT_EQ(certs.exit_code, 0) << certs.err;
    std::vector<std::string> from_openssl;
    for (const auto& pem : pem_blocks(certs.out, "CERTIFICATE")) {
        RunOptions options;
        options.stdin_data = pem;
        const RunResult fp = run({"openssl", "x509", "-noout", "-fingerprint", "-sha256"}, options);
        ASSERT_EQ(fp.exit_code, 0) << fp.err;
        ASSERT_NE(fp.out.find('='), std::string::npos) << fp.out;
        from_openssl.push_back(plain_hex(fp.out.substr(fp.out.find('=') + 1)));
    }
    std::vector<std::string> from_p11vault;
    for (const auto& cert : document.at("certificates"))
        from_p11vault.push_back(plain_hex(cert.at("sha256_fingerprint").get<std::string>()));
    std::sort(from_openssl.begin(), from_openssl.end());
    std::sort(from_p11vault.begin(), from_p11vault.end());
    ASSERT_FALSE(from_openssl.empty());
    EXPECT_EQ(from_p11vault, from_openssl);
}

TEST_P(VerifyFingerprints, SpkiSha256MatchesOpensslPkeyPubout) {
    const auto& [file, password] = GetParam();
    const RunResult result = verify({"--in", corpus_file(file), "--json"}, password);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    ASSERT_EQ(document.at("keys").size(), 1u);

    const RunResult key = openssl_pkcs12(corpus_file(file), password, {"-nocerts", "-nodes"});
    ASSERT_EQ(key.exit_code, 0) << key.err;
    RunOptions options;
    options.stdin_data = key.out;
    const RunResult spki = run({"openssl", "pkey", "-pubout", "-outform", "DER"}, options);
    ASSERT_EQ(spki.exit_code, 0) << spki.err;
    ASSERT_FALSE(spki.out.empty());
    EXPECT_EQ(plain_hex(document.at("keys").at(0).at("spki_sha256").get<std::string>()), sha256_hex(spki.out));
}

INSTANTIATE_TEST_SUITE_P(Files, VerifyFingerprints,
                         ::testing::Values(std::make_pair("openssl3-rsa-full-chain.p12", "password"),
                                           std::make_pair("windows7-certmgr-legacy.p12", "foo"),
                                           std::make_pair("openssl3-ec-p384.p12", "password"),
                                           std::make_pair("openssl3-ed25519.p12", "password")),
                         [](const auto& info) {
                             std::string name = info.param.first.substr(0, info.param.first.find('.'));
                             for (char& c : name)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return name;
                         });

// ---------------------------------------------------------------------------------------
// Files built here with OpenSSL's API: PKCS12_create refuses a key with another key's
// certificate, so the bags are assembled one by one.

struct PkeyDeleter {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

Pkey new_ec_key() { return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }

// A PFX holding `key` (PBES2 AES-256 shrouded key bag) and `cert` (in an AES-256 encrypted
// safe), both with localKeyID C0FFEE and friendlyName "pair", SHA-256 MAC.
std::string build_pfx(EVP_PKEY* key, X509* cert, const std::string& password) {
    static const unsigned char id[] = {0xc0, 0xff, 0xee};
    STACK_OF(PKCS12_SAFEBAG)* cert_bags = nullptr;
    PKCS12_SAFEBAG* cert_bag = PKCS12_add_cert(&cert_bags, cert);
    EXPECT_NE(cert_bag, nullptr);
    EXPECT_EQ(PKCS12_add_localkeyid(cert_bag, const_cast<unsigned char*>(id), sizeof id), 1);
    EXPECT_EQ(PKCS12_add_friendlyname_utf8(cert_bag, "pair", -1), 1);
    STACK_OF(PKCS12_SAFEBAG)* key_bags = nullptr;
    PKCS12_SAFEBAG* key_bag = PKCS12_add_key(&key_bags, key, 0, 2048, NID_aes_256_cbc, password.c_str());
    EXPECT_NE(key_bag, nullptr);
    EXPECT_EQ(PKCS12_add_localkeyid(key_bag, const_cast<unsigned char*>(id), sizeof id), 1);
    EXPECT_EQ(PKCS12_add_friendlyname_utf8(key_bag, "pair", -1), 1);
    STACK_OF(PKCS7)* safes = nullptr;
    EXPECT_EQ(PKCS12_add_safe(&safes, cert_bags, NID_aes_256_cbc, 2048, password.c_str()), 1);
    EXPECT_EQ(PKCS12_add_safe(&safes, key_bags, -1, 0, nullptr), 1);
    PKCS12* p12 = PKCS12_add_safes(safes, 0);
    EXPECT_NE(p12, nullptr);
    EXPECT_EQ(PKCS12_set_mac(p12, password.c_str(), -1, nullptr, 0, 2048, EVP_sha256()), 1);
    unsigned char* der = nullptr;
    const int length = i2d_PKCS12(p12, &der);
    std::string out(reinterpret_cast<char*>(der), length > 0 ? static_cast<std::size_t>(length) : 0);
    OPENSSL_free(der);
    PKCS12_free(p12);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    sk_PKCS12_SAFEBAG_pop_free(cert_bags, PKCS12_SAFEBAG_free);
    sk_PKCS12_SAFEBAG_pop_free(key_bags, PKCS12_SAFEBAG_free);
    return out;
}

class VerifyBuiltFile : public ::testing::Test {
protected:
    void SetUp() override { dir_ = make_temp_dir("verify-test"); }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    std::string dir_;
};

TEST_F(VerifyBuiltFile, MatchingKeyAndCertificateBuiltTheSameWayVerify) {
    // The control for the mismatch test: the same construction with the right certificate.
    Pkey key = new_ec_key();
    const IssuedCert cert = TestCa::instance().issue(key.get(), "matching pair");
    write_bytes(path("good.p12"), build_pfx(key.get(), cert.cert.get(), "pw-1"));
    const RunResult result = verify({"--in", path("good.p12"), "--json"}, "pw-1");
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    ASSERT_EQ(document.at("keys").size(), 1u);
    EXPECT_EQ(document.at("keys").at(0).at("local_key_id"), "c0ffee");
    EXPECT_EQ(document.at("keys").at(0).at("friendly_name"), "pair");
    EXPECT_EQ(document.at("keys").at(0).at("certificate"), 0);
}

TEST_F(VerifyBuiltFile, KeyWithAnotherKeysCertificateIsExit4NamingTheProblem) {
    Pkey key_a = new_ec_key();
    Pkey key_b = new_ec_key();
    const IssuedCert cert_b = TestCa::instance().issue(key_b.get(), "certificate of key B");
    write_bytes(path("mismatch.p12"), build_pfx(key_a.get(), cert_b.cert.get(), "pw-1"));

    for (const bool json_output : {false, true}) {
        std::vector<std::string> args = {"--in", path("mismatch.p12")};
        if (json_output) args.push_back("--json");
        const RunResult result = verify(args, "pw-1");
        EXPECT_EQ(result.exit_code, 4) << "json=" << json_output << "\n" << result.out << result.err;
        expect_one_error_line(result);
        std::string error_line;
        for (const auto& line : result.err_lines())
            if (line.rfind("p11vault: error:", 0) == 0) error_line = line;
        // It names what is wrong: the key does not match the certificate (named by subject).
        EXPECT_NE(lower(error_line).find("match"), std::string::npos) << error_line;
        EXPECT_NE(error_line.find("certificate of key B"), std::string::npos) << error_line;
    }
}

TEST_F(VerifyBuiltFile, WrongPasswordIsExit3) {
    Pkey key = new_ec_key();
    const IssuedCert cert = TestCa::instance().issue(key.get(), "wrong password");
    write_bytes(path("good.p12"), build_pfx(key.get(), cert.cert.get(), "right password"));
    const RunResult result = verify({"--in", path("good.p12")}, "wrong password");
    EXPECT_EQ(result.exit_code, 3) << result.out << result.err;
    expect_one_error_line(result);
    EXPECT_EQ(result.err.find("right password"), std::string::npos);
}

TEST(VerifyCorpus, WrongPasswordOnProducerFilesIsExit3) {
    for (const char* file : {"windows10-export-3des.p12", "openssl3-ec-p384.p12", "rfc9579-pbmac1-sha256.p12"}) {
        const RunResult result = verify({"--in", corpus_file(file), "--json"}, "not the password");
        EXPECT_EQ(result.exit_code, 3) << file << "\n" << result.err;
        expect_one_error_line(result);
        EXPECT_EQ(result.err.find("not the password"), std::string::npos) << "the password was printed";
        EXPECT_EQ(result.out.find("not the password"), std::string::npos) << "the password was printed";
    }
}

TEST_F(VerifyBuiltFile, TruncatedFileIsExit4) {
    const std::string whole = read_bytes(corpus_file("openssl3-ec-p384.p12"));
    ASSERT_GT(whole.size(), 100u);
    for (const std::size_t keep : {whole.size() / 2, whole.size() - 1, std::size_t{16}}) {
        write_bytes(path("truncated.p12"), whole.substr(0, keep));
        const RunResult result = verify({"--in", path("truncated.p12"), "--json"}, "password");
        EXPECT_EQ(result.exit_code, 4) << "kept " << keep << " of " << whole.size() << " bytes\n" << result.err;
        expect_one_error_line(result);
    }
}

TEST_F(VerifyBuiltFile, EmptyFileIsExit4) {
    write_bytes(path("empty.p12"), "");
    const RunResult result = verify({"--in", path("empty.p12")}, "password");
    EXPECT_EQ(result.exit_code, 4) << result.err;
    expect_one_error_line(result);
}

// ---------------------------------------------------------------------------------------
// Warnings.

TEST(VerifyWarnings, LegacyWindowsFileWarnsAboutRc2Sha1MacAndIterations) {
    const RunResult result = verify({"--in", corpus_file("windows7-certmgr-legacy.p12"), "--json"}, "foo");
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json warnings = stdout_json(result).at("warnings");
    EXPECT_TRUE(any_contains(warnings, "RC2")) << warnings.dump(2);
    EXPECT_TRUE(any_contains(warnings, "SHA-1") || any_contains(warnings, "SHA1")) << warnings.dump(2);
    EXPECT_TRUE(any_contains(warnings, "2000 iterations") || any_contains(warnings, "2000 it")) << warnings.dump(2);
    // Human output: the same warnings on stderr, as warnings, not errors.
    const RunResult text = verify({"--in", corpus_file("windows7-certmgr-legacy.p12")}, "foo");
    ASSERT_EQ(text.exit_code, 0) << text.err;
    EXPECT_NE(text.err.find("p11vault: warning:"), std::string::npos) << text.err;
    EXPECT_NE(text.err.find("RC2"), std::string::npos) << text.err;
}

TEST(VerifyWarnings, ModernFileHasNoWeakSchemeWarning) {
    // The control: 600001 iterations, PBES2 AES-256, SHA-256 MAC.
    const RunResult result = verify({"--in", corpus_file("openssl3-600001-iterations.p12"), "--json"}, "");
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json warnings = stdout_json(result).at("warnings");
    EXPECT_FALSE(any_contains(warnings, "RC2")) << warnings.dump(2);
    EXPECT_FALSE(any_contains(warnings, "SHA-1")) << warnings.dump(2);
    EXPECT_FALSE(any_contains(warnings, "iterations")) << warnings.dump(2);
}

TEST(VerifyWarnings, KeyWithoutCertificateWarns) {
    const RunResult result = verify({"--in", corpus_file("pyca-key-only-no-cert.p12"), "--json"}, "cryptography");
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    ASSERT_EQ(document.at("keys").size(), 1u);
    EXPECT_EQ(document.at("certificates").size(), 0u);
    EXPECT_TRUE(document.at("keys").at(0).at("certificate").is_null());
    EXPECT_TRUE(any_contains(document.at("warnings"), "no certificate")) << document.at("warnings").dump(2);
}

// ---------------------------------------------------------------------------------------
// --record.

TEST_F(VerifyBuiltFile, RecordAppendsOneLinePerRun) {
    const std::string record = path("ceremony.log");
    const std::string file = corpus_file("openssl3-ec-p384.p12");
    const RunResult first = verify({"--in", file, "--json", "--record", record}, "password");
    ASSERT_EQ(first.exit_code, 0) << first.err;
    const json verified = stdout_json(first);

    auto lines_of = [&] {
        std::vector<std::string> lines;
        std::istringstream in(read_bytes(record));
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) lines.push_back(line);
        return lines;
    };
    auto lines = lines_of();
    ASSERT_EQ(lines.size(), 1u);
    const json one = json::parse(lines[0]);
    EXPECT_EQ(one.at("command"), "verify");
    EXPECT_EQ(one.at("result"), "ok");
    EXPECT_EQ(one.at("file_sha256"), sha256_hex(read_bytes(file)));
    ASSERT_EQ(one.at("keys").size(), 1u);
    EXPECT_EQ(plain_hex(one.at("keys").at(0).at("spki_sha256").get<std::string>()),
              plain_hex(verified.at("keys").at(0).at("spki_sha256").get<std::string>()));
    EXPECT_EQ(lower(one.at("keys").at(0).at("id").get<std::string>()), "3da7c20d99dad49f79c3b1be658d6f84c0c8baf1");

    // A failing run (wrong password) is recorded too, chained to the first line.
    const RunResult second = verify({"--in", file, "--record", record}, "wrong-password-xyz");
    EXPECT_EQ(second.exit_code, 3);
    lines = lines_of();
    ASSERT_EQ(lines.size(), 2u);
    const json two = json::parse(lines[1]);
    EXPECT_EQ(two.at("command"), "verify");
    EXPECT_EQ(two.at("result"), "failed");
    EXPECT_EQ(two.at("exit_code"), 3);
    EXPECT_EQ(two.at("previous_sha256"), sha256_hex(lines[0]));
    const std::string all = read_bytes(record);
    EXPECT_EQ(all.find("wrong-password-xyz"), std::string::npos) << "a secret in the record";
    EXPECT_EQ(all.find("\"password\""), std::string::npos) << "a secret in the record";
}

}  // namespace
}  // namespace p11vault::testing
