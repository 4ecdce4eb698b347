// SPDX-License-Identifier: Apache-2.0
// M-of-N escrow (issue 22, item 3): a 2-of-3 file opens with any two officers' tokens,
// fails with exit 3 naming the threshold with one, and escrow-share + --escrow-share give
// the same result; verify lists the officers (issuer, serial, subject key identifier,
// certificate SHA-256), threshold and format without any key.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/integration/escrow_fixture.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

pkcs11::Bytes ossl_octets(const ASN1_OCTET_STRING* octets) {
    if (octets == nullptr) return {};
    const unsigned char* data = ASN1_STRING_get0_data(octets);
    return pkcs11::Bytes(data, data + ASN1_STRING_length(octets));
}

// The certificate's serial number, big-endian without leading zeros.
pkcs11::Bytes serial_of(const X509* cert) {
    const std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr),
                                                          BN_free);
    if (!bn) throw std::runtime_error("reading a certificate's serial number");
    pkcs11::Bytes out(static_cast<std::size_t>(BN_num_bytes(bn.get())));
    BN_bn2bin(bn.get(), out.data());
    return out;
}

class EscrowThresholdTest : public EscrowTest {
protected:
    void SetUp() override {
        EscrowTest::SetUp();
        officers_.push_back(make_officer("officer1", "RSA"));
        officers_.push_back(make_officer("officer2", "EC"));
        officers_.push_back(make_officer("officer3", "RSA"));
        file_ = path("two-of-three.p11escrow");
        const RunResult made =
            backup_to(file_, {&officers_[0], &officers_[1], &officers_[2]}, {"--recipient-threshold", "2"});
        ASSERT_EQ(made.exit_code, 0) << made.err;
    }

    RunResult escrow_share(const Officer& officer, const std::string& out) const {
        return p11vault({"escrow-share", "--in", file_, "--recipient-key", officer.uri(), "--recipient-module",
                         source_.module_path(), "--recipient-pin", "file:" + pin_file_, "--out", out});
    }

    std::vector<Officer> officers_;
    std::string file_;
};

TEST_F(EscrowThresholdTest, AnyTwoOfficersTokensOpenItTogether) {
    const RunResult verified = restore_with(file_, {&officers_[1], &officers_[2]}, {"--json"}, "verify");
    ASSERT_EQ(verified.exit_code, 0) << verified.err;
    EXPECT_EQ(stdout_json(verified).at("escrow").at("opened_by"),
              json::array({officers_[1].certificate_sha256(), officers_[2].certificate_sha256()}));
    EXPECT_EQ(stdout_json(verified).at("keys").size(), 1u) << verified.out;
    // Each URI may name its own module and PIN file (RFC 7512 module-path, pin-source).
    const std::string own_uri = officers_[2].uri() + "?module-path=" + pct_text(source_.module_path()) +
                                "&pin-source=" + pct_text("file:" + pin_file_);
    const RunResult dry = restore_with(file_, {&officers_[0]}, {"--recipient-key", own_uri, "--dry-run"});
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_NE(dry.out.find("would restore 1 of 1 key"), std::string::npos) << "the content was not read: " << dry.out;
    const RunResult restored = restore_with(file_, {&officers_[0], &officers_[1]});
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    expect_key_restored();
}

TEST_F(EscrowThresholdTest, OneOfficerIsNotEnoughExit3NamingTheThreshold) {
    const auto before = target_.objects();
    for (const Officer& officer : officers_) {
        const RunResult result = restore_with(file_, {&officer});
        EXPECT_EQ(result.exit_code, 3) << result.err;
        EXPECT_NE(result.err.find("needs 2 of its 3 recovery officers; 1 opened its share"), std::string::npos)
            << result.err;
    }
    // The same officer twice counts once.
    const RunResult twice = restore_with(file_, {&officers_[0], &officers_[0]});
    EXPECT_EQ(twice.exit_code, 2) << twice.err;
    EXPECT_NE(twice.err.find("each officer counts once"), std::string::npos) << twice.err;
    EXPECT_EQ(target_.objects(), before);
}

TEST_F(EscrowThresholdTest, EscrowShareFilesOpenItAsTheTokensDo) {
    const std::string share1 = path("share1.txt"), share3 = path("share3.txt");
    RunResult result = escrow_share(officers_[0], share1);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_NE(result.out.find("Wrote share 1 of"), std::string::npos) << result.out;
    ASSERT_EQ(escrow_share(officers_[2], share3).exit_code, 0);
    EXPECT_EQ(file_mode(share1), 0600u);
    EXPECT_EQ(read_text(share1).rfind("p11vault password share, format 1\n", 0), 0u) << read_text(share1);
    EXPECT_NE(read_text(share3).find("share: 3\n"), std::string::npos);
    // A share file is never replaced.
    const std::string written = read_text(share1);
    result = escrow_share(officers_[0], share1);
    EXPECT_EQ(result.exit_code, 6) << result.err;
    EXPECT_NE(result.err.find("exists"), std::string::npos) << result.err;
    EXPECT_EQ(read_text(share1), written);

    const auto before = target_.objects();
    result = restore_with(file_, {}, {"--escrow-share", share1});
    EXPECT_EQ(result.exit_code, 3) << result.err;
    EXPECT_NE(result.err.find("needs 2 of its 3"), std::string::npos) << result.err;
    EXPECT_EQ(target_.objects(), before);

    // A share file and an officer's token together, and two share files.
    result = restore_with(file_, {&officers_[1]}, {"--escrow-share", share3, "--dry-run"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    result = restore_with(file_, {}, {"--escrow-share", share1, "--escrow-share", share3});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    expect_key_restored();
}

TEST_F(EscrowThresholdTest, EscrowShareRefusesAnOutsiderWithExit3) {
    const Officer outsider = make_officer("outsider", "EC");
    const RunResult result = escrow_share(outsider, path("share.txt"));
    EXPECT_EQ(result.exit_code, 3) << result.err;
    EXPECT_NE(result.err.find("is not one of the file's recovery officers"), std::string::npos) << result.err;
    EXPECT_FALSE(file_exists(path("share.txt")));
}

TEST_F(EscrowThresholdTest, VerifyWithoutKeysDescribesTheFile) {
    const RunResult result = p11vault({"verify", "--in", file_, "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json escrow = stdout_json(result).at("escrow");
    EXPECT_EQ(escrow.at("format"), "p11vault-threshold");
    EXPECT_EQ(escrow.at("format_version"), 1);
    EXPECT_EQ(escrow.at("threshold"), 2);
    EXPECT_EQ(escrow.at("content_opened"), false);
    ASSERT_EQ(escrow.at("recipients").size(), 3u);
    EXPECT_EQ(escrow.at("recipients")[1].at("subject"), "CN=officer2");
    EXPECT_EQ(escrow.at("recipients")[1].at("algorithm"), "ECDH-stdDH-SHA256-KDF");
    // Each officer by issuer, serial, subject key identifier and certificate SHA-256, in
    // share order.
    for (std::size_t i = 0; i < officers_.size(); ++i) {
        const json& recipient = escrow.at("recipients")[i];
        const X509Ptr cert = officers_[i].certificate();
        EXPECT_EQ(recipient.at("issuer"), "CN=" + officers_[i].name) << recipient.dump();
        EXPECT_EQ(bytes_from_hex(recipient.at("serial")), serial_of(cert.get())) << recipient.dump();
        EXPECT_EQ(bytes_from_hex(recipient.at("subject_key_id")), ossl_octets(X509_get0_subject_key_id(cert.get())))
            << recipient.dump();
        EXPECT_EQ(recipient.at("certificate_sha256"), officers_[i].certificate_sha256()) << recipient.dump();
    }
}

TEST_F(EscrowThresholdTest, AChangedThresholdIsRefused) {
    // The threshold INTEGER follows the magic and the version: 2 -> 1 must not let one
    // officer open it.
    std::string data = read_text(file_);
    const std::string marker = std::string("p11vault escrow threshold") + "\x02\x01\x01" + "\x02\x01\x02";
    const auto at = data.find(marker);
    ASSERT_NE(at, std::string::npos);
    data[at + marker.size() - 1] = '\x01';
    write_text(file_, data);
    const RunResult result = restore_with(file_, {&officers_[0]});
    EXPECT_EQ(result.exit_code, 4) << result.err;
}

}  // namespace
}  // namespace p11vault::testing
