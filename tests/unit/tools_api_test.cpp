// SPDX-License-Identifier: Apache-2.0
// The file-side tools of the public API (issue 21) in-process, through include/p11vault/
// only: password shares, the record file, escrowed files. OpenSSL appears here only to
// make an officer's certificate for the escrow tests.
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "p11vault/digest.hpp"
#include "p11vault/error.hpp"
#include "p11vault/escrow.hpp"
#include "p11vault/record.hpp"
#include "p11vault/shares.hpp"
#include "tests/support/test_keys.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault {
namespace {

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_all(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Runs `body`, which must throw p11vault::Error; returns it.
template <typename Body>
Error error_of(Body&& body) {
    try {
        body();
    } catch (const Error& e) {
        return e;
    }
    ADD_FAILURE() << "no p11vault::Error thrown";
    return Error(ErrorKind::failure, "no p11vault::Error thrown");
}

std::vector<ShareText> texts_of(const std::vector<PasswordShare>& shares, std::initializer_list<unsigned> numbers) {
    std::vector<ShareText> out;
    for (unsigned number : numbers)
        out.push_back({"share " + std::to_string(number), shares.at(number - 1).text.clone()});
    return out;
}

// ---- Shares --------------------------------------------------------------------------

TEST(ToolsApiShares, AnyTwoOfThreeShareTextsRecoverThePassword) {
    const SecretBytes password = SecretBytes::from_text("correct horse battery staple");
    const std::vector<PasswordShare> shares = split_password(password, 2, 3);
    ASSERT_EQ(shares.size(), 3u);
    for (unsigned i = 0; i < 3; ++i) {
        EXPECT_EQ(shares[i].info.number, i + 1);
        EXPECT_EQ(shares[i].info.threshold, 2u);
        EXPECT_EQ(shares[i].info.count, 3u);
        EXPECT_EQ(shares[i].info.set_id, shares[0].info.set_id);
        // The text is the share file: it says what it is, and never holds the password.
        EXPECT_EQ(shares[i].text.reveal_text().rfind("p11vault password share, format 1\n", 0), 0u);
        EXPECT_EQ(shares[i].text.reveal_text().find("correct horse"), std::string_view::npos);
    }
    EXPECT_TRUE(combine_shares(texts_of(shares, {1, 2})) == password);
    EXPECT_TRUE(combine_shares(texts_of(shares, {3, 1})) == password);
    EXPECT_TRUE(combine_shares(texts_of(shares, {1, 2, 3})) == password);

    const ShareInfo info = parse_share_text({"share 2", shares[1].text.clone()});
    EXPECT_EQ(info.set_id, shares[0].info.set_id);
    EXPECT_EQ(info.number, 2u);
    EXPECT_EQ(info.threshold, 2u);
    EXPECT_EQ(info.count, 3u);
}

TEST(ToolsApiShares, ShareFilesRecoverThePassword) {
    const std::string dir = testing::make_temp_dir("tools-api-shares");
    const SecretBytes password = generate_share_password();
    EXPECT_EQ(password.size(), 28u) << "130 bits: 17 random bytes, 28 base32 characters";
    const std::vector<PasswordShare> shares = split_password(password, 3, 5);
    std::vector<std::string> paths;
    for (unsigned number : {5u, 2u, 4u}) {
        paths.push_back(dir + "/share-" + std::to_string(number) + ".txt");
        write_all(paths.back(), std::string(shares[number - 1].text.reveal_text()));
    }
    EXPECT_TRUE(combine_share_files(paths) == password);
    const Error missing = error_of([&] { combine_share_files({dir + "/absent.txt"}); });
    EXPECT_EQ(missing.kind(), ErrorKind::usage);
    EXPECT_STREQ(missing.what(), ("cannot read share file " + dir + "/absent.txt").c_str());
    std::filesystem::remove_all(dir);
}

TEST(ToolsApiShares, TooFewSharesAreBadInput) {
    const std::vector<PasswordShare> shares = split_password(SecretBytes::from_text("pw"), 3, 5);
    const Error e = error_of([&] { combine_shares(texts_of(shares, {1, 4})); });
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_STREQ(e.what(), "2 shares given, but this set needs 3 to recover the secret");
}

TEST(ToolsApiShares, SharesOfDifferentSplitsAreBadInput) {
    const std::vector<PasswordShare> first = split_password(SecretBytes::from_text("pw"), 2, 3);
    const std::vector<PasswordShare> second = split_password(SecretBytes::from_text("pw"), 2, 3);
    std::vector<ShareText> mixed = texts_of(first, {1});
    mixed.push_back({"other", second[1].text.clone()});
    const Error e = error_of([&] { combine_shares(mixed); });
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("the shares belong to different sets"), std::string::npos) << e.what();
}

TEST(ToolsApiShares, AShareGivenTwiceIsBadInput) {
    const std::vector<PasswordShare> shares = split_password(SecretBytes::from_text("pw"), 2, 3);
    const Error e = error_of([&] { combine_shares(texts_of(shares, {2, 2})); });
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_STREQ(e.what(), "share 2 was given twice");
}

TEST(ToolsApiShares, AMistypedLineIsNamedWithItsShare) {
    const std::vector<PasswordShare> shares = split_password(SecretBytes::from_text("pw"), 2, 3);
    std::string typed(shares[0].text.reveal_text());
    // The first data line: "01 ABCD EFGH ...  checksum"; change one base32 character.
    const std::size_t line = typed.find("\n01 ") + 4;
    typed[line] = typed[line] == 'A' ? 'B' : 'A';
    std::vector<ShareText> given;
    given.push_back({"alice.txt", SecretBytes::from_text(typed)});
    given.push_back({"bob.txt", shares[1].text.clone()});
    const Error e = error_of([&] { combine_shares(given); });
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_STREQ(e.what(), "alice.txt: data line 1 does not match its checksum: check it against the paper copy");
}

TEST(ToolsApiShares, ImpossibleThresholdsAreUsageErrors) {
    const SecretBytes password = SecretBytes::from_text("pw");
    for (const std::pair<unsigned, unsigned>& split : {std::pair{1u, 3u}, std::pair{4u, 3u}, std::pair{2u, 256u}}) {
        const Error e = error_of([&] { split_password(password, split.first, split.second); });
        EXPECT_EQ(e.kind(), ErrorKind::usage) << split.first << " of " << split.second;
    }
}

// ---- Records -------------------------------------------------------------------------

RunRecord sample_record(const std::string& label) {
    RunRecord record;
    record.command = "backup";
    record.succeeded = true;
    record.token = RecordedToken{"CA", "1a2b", "SoftHSM project", "SoftHSM v2"};
    record.file = "ca.p12";
    record.file_sha256 = std::string(64, 'a');
    RecordedKey key;
    key.id = "01";
    key.label = label;
    key.type = "EC-P256";
    key.path = "token-wrap";
    key.spki_sha256 = std::string(64, 'b');
    record.keys.push_back(key);
    record.details_json = R"({"profile":"modern","certificates":1})";
    return record;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

TEST(ToolsApiRecords, AppendedRecordsChainAndHoldWhatTheRunGave) {
    const std::string dir = testing::make_temp_dir("tools-api-record");
    const std::string path = dir + "/log.jsonl";
    EXPECT_TRUE(append_record(path, sample_record("first")).empty());
    {
        RecordFile file(path);
        EXPECT_TRUE(file.append(sample_record("second")).empty());
    }
    const RecordCheck check = check_records(path);
    EXPECT_EQ(check.records, 2u);
    EXPECT_TRUE(check.intact()) << (check.problems.empty() ? "" : check.problems.front());

    const std::vector<std::string> lines = lines_of(read_all(path));
    ASSERT_EQ(lines.size(), 2u);
    for (const char* part :
         {R"("command":"backup","result":"ok","exit_code":0,)",
          R"("token":{"label":"CA","serial":"1a2b","manufacturer":"SoftHSM project","model":"SoftHSM v2"},)",
          R"("file":"ca.p12",)", R"("details":{"profile":"modern","certificates":1},)"})
        EXPECT_NE(lines[1].find(part), std::string::npos) << part << " not in " << lines[1];
    EXPECT_NE(lines[1].find(recorded_key_json(sample_record("second").keys.front())), std::string::npos);
    EXPECT_NE(lines[1].find(R"("previous_sha256":")" + sha256_hex({reinterpret_cast<const std::uint8_t*>(
                                                                        lines[0].data()),
                                                                    lines[0].size()}) +
                            "\""),
              std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST(ToolsApiRecords, AKeyIsWrittenWithNullsForWhatIsUnknown) {
    RecordedKey key;
    key.id = "0c";
    key.label = "k";
    key.type = "AES-256";
    key.notes = {"n"};
    EXPECT_EQ(recorded_key_json(key),
              R"({"id":"0c","label":"k","type":"AES-256","path":null,"status":"ok","spki_sha256":null,)"
              R"("certificate_sha256":null,"certificate_subject":null,"notes":["n"],"repaired":[],)"
              R"("renumbered_from":null})");
}

TEST(ToolsApiRecords, ATamperedRecordIsFound) {
    const std::string dir = testing::make_temp_dir("tools-api-record");
    const std::string path = dir + "/log.jsonl";
    for (const char* label : {"first", "second", "third"}) append_record(path, sample_record(label));
    std::string text = read_all(path);
    text.replace(text.find("\"second\""), 8, "\"forged\"");
    write_all(path, text);
    const RecordCheck check = check_records(path);
    EXPECT_EQ(check.records, 3u);
    ASSERT_EQ(check.problems.size(), 1u);
    EXPECT_FALSE(check.intact());
    EXPECT_EQ(check.problems.front(),
              "line 3: previous_sha256 does not match the record before it (a record was removed, inserted or "
              "edited)");
    std::filesystem::remove_all(dir);
}

TEST(ToolsApiRecords, DetailsThatAreNotAJsonObjectAreRefusedAndNothingIsAppended) {
    const std::string dir = testing::make_temp_dir("tools-api-record");
    const std::string path = dir + "/log.jsonl";
    append_record(path, sample_record("first"));
    const std::string before = read_all(path);
    for (const char* details : {"[1]", "{\"open\":", ""}) {
        RunRecord record = sample_record("second");
        record.details_json = details;
        const Error e = error_of([&] { append_record(path, record); });
        EXPECT_EQ(e.kind(), ErrorKind::usage) << details;
        EXPECT_STREQ(e.what(), "the details of a backup record are not a JSON object");
    }
    EXPECT_EQ(read_all(path), before);
    std::filesystem::remove_all(dir);
}

TEST(ToolsApiRecords, AFileThatIsNoRecordFileIsRefused) {
    const std::string dir = testing::make_temp_dir("tools-api-record");
    const std::string path = dir + "/notes.txt";
    write_all(path, "shopping list\n");
    const Error e = error_of([&] { RecordFile file(path); });
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_EQ(read_all(path), "shopping list\n");
    EXPECT_EQ(error_of([&] { check_records(dir); }).kind(), ErrorKind::bad_input);
    std::filesystem::remove_all(dir);
}

// ---- Escrow --------------------------------------------------------------------------

// A self-signed officer certificate (EC P-256, no keyUsage) written as PEM to `path`.
void write_officer_certificate(const std::string& path, const std::string& common_name) {
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    X509* cert = X509_new();
    ASSERT_NE(key, nullptr);
    ASSERT_NE(cert, nullptr);
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    X509_sign(cert, key, EVP_sha256());
    FILE* out = std::fopen(path.c_str(), "w");
    ASSERT_NE(out, nullptr);
    PEM_write_X509(out, cert);
    std::fclose(out);
    X509_free(cert);
    EVP_PKEY_free(key);
}

class ToolsApiEscrow : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = testing::make_temp_dir("tools-api-escrow");
        for (const char* name : {"officer1", "officer2"}) {
            paths_.push_back(dir_ + "/" + name + ".pem");
            write_officer_certificate(paths_.back(), name);
        }
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    // Escrowed bytes (the PKCS#12 stands in as any bytes: the envelope does not read them).
    std::vector<std::uint8_t> escrowed(unsigned threshold) {
        const OfficerCertificates officers = OfficerCertificates::load(paths_, false);
        const std::vector<std::uint8_t> content = {0x30, 0x03, 0x02, 0x01, 0x03};
        return officers.wrap(content, threshold);
    }

    std::string save(const std::vector<std::uint8_t>& data, const std::string& name) {
        const std::string path = dir_ + "/" + name;
        write_all(path, std::string(data.begin(), data.end()));
        return path;
    }

    std::string dir_;
    std::vector<std::string> paths_;
};

TEST_F(ToolsApiEscrow, OfficerCertificatesAreDescribedWithoutOpenSsl) {
    const OfficerCertificates officers = OfficerCertificates::load(paths_, false);
    ASSERT_EQ(officers.certificates().size(), 2u);
    EXPECT_EQ(officers.certificates()[0].subject, "CN=officer1");
    EXPECT_EQ(officers.certificates()[0].key_type, "EC-P256");
    EXPECT_EQ(officers.certificates()[0].source, paths_[0]);
    EXPECT_EQ(officers.certificates()[1].sha256.size(), 64u);
    EXPECT_EQ(error_of([&] { OfficerCertificates::load({paths_[0], paths_[0]}, false); }).kind(), ErrorKind::usage);
    const std::string not_a_certificate = save({'h', 'i'}, "hi.pem");
    EXPECT_EQ(error_of([&] { OfficerCertificates::load({not_a_certificate}, false); }).kind(), ErrorKind::bad_input);
    EXPECT_TRUE(escrow_inner_password() == SecretBytes::from_text("p11vault-escrow"));
}

TEST_F(ToolsApiEscrow, EscrowedFilesAreReadAndDescribed) {
    const std::string one_of_two = save(escrowed(1), "one.p7");
    const BackupFileBytes one = read_backup_file(one_of_two, kDefaultMaxFileSize);
    EXPECT_TRUE(one.escrowed);
    EXPECT_EQ(one.sha256, sha256_hex(one.data));
    const EscrowSummary envelope = describe_escrow(one.data, one_of_two);
    EXPECT_EQ(envelope.format, EscrowFormat::cms_envelope);
    EXPECT_EQ(envelope.threshold, 1u);
    EXPECT_EQ(envelope.recipients.size(), 2u);
    EXPECT_EQ(envelope.content_encryption, "AES-256-GCM");

    const std::string two_of_two = save(escrowed(2), "two.p7");
    const BackupFileBytes two = read_backup_file(two_of_two, kDefaultMaxFileSize);
    EXPECT_TRUE(two.escrowed);
    const EscrowSummary threshold = describe_escrow(two.data, two_of_two);
    EXPECT_EQ(threshold.format, EscrowFormat::threshold);
    EXPECT_EQ(threshold.threshold, 2u);
    ASSERT_EQ(threshold.recipients.size(), 2u);
    EXPECT_EQ(threshold.recipients[1].subject, std::optional<std::string>("CN=officer2"));

    const std::string plain = save({0x30, 0x03, 0x02, 0x01, 0x03}, "plain.p12");
    EXPECT_FALSE(read_backup_file(plain, kDefaultMaxFileSize).escrowed);
    const Error large = error_of([&] { read_backup_file(two_of_two, 16); });
    EXPECT_EQ(large.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(large.what()).find("is larger than 16 bytes"), std::string::npos) << large.what();
}

TEST_F(ToolsApiEscrow, EscrowShareOfAOneOfNFileIsAUsageError) {
    const std::vector<std::uint8_t> data = escrowed(1);
    const Error e = error_of([&] { extract_escrow_share(data, "one.p7", {"pkcs11:token=KRA;object=officer1", {}, {}}); });
    EXPECT_EQ(e.kind(), ErrorKind::usage);
    EXPECT_EQ(std::string(e.what()), "one.p7 is not an M-of-N escrow file: escrow-share is for those; a 1-of-N file "
                                     "opens with restore --recipient-key alone");
}

TEST_F(ToolsApiEscrow, ATruncatedEscrowedFileIsBadInput) {
    for (unsigned threshold : {1u, 2u}) {
        std::vector<std::uint8_t> data = escrowed(threshold);
        data.resize(data.size() - 10);
        EXPECT_EQ(error_of([&] { describe_escrow(data, "cut.p7"); }).kind(), ErrorKind::bad_input) << threshold;
    }
}

TEST_F(ToolsApiEscrow, OpeningWithAShareOfAnotherSetIsBadInputAndNothingIsWarned) {
    const std::vector<std::uint8_t> data = escrowed(2);
    // A password share (2-of-3) is no share of this 2-of-2 file.
    const std::vector<PasswordShare> shares = split_password(SecretBytes::from_text("pw"), 2, 3);
    const std::string share = dir_ + "/share.txt";
    write_all(share, std::string(shares[0].text.reveal_text()));
    struct CountingEvents : Events {
        void warning(std::string_view) override { ++warnings; }
        int warnings = 0;
    } events;
    const Error e = error_of([&] { open_escrowed_backup(data, "two.p7", {}, {share}, events); });
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_EQ(std::string(e.what()), share + " is a share of a 2-of-3 set, not of two.p7 (2-of-2)");
    EXPECT_EQ(events.warnings, 0);
    const Error none = error_of([&] { open_escrowed_backup(data, "two.p7", {}, {}, events); });
    EXPECT_EQ(none.kind(), ErrorKind::usage);
}

TEST_F(ToolsApiEscrow, EscrowShareWithAKeyThatIsNoOfficersIsABadPassword) {
    const std::vector<std::uint8_t> data = escrowed(2);
    testing::TestToken token(testing::Backend::softhsm);
    {
        auto session = token.open_session();
        testing::generate_ec(*session, "P-256", {0x0f}, "stranger");
    }
    const std::string pin_file = token.write_pin_file();
    const RecoveryOfficerKey key{"pkcs11:token=" + token.label() + ";object=stranger", token.module_path(),
                                 "file:" + pin_file};
    const Error e = error_of([&] { extract_escrow_share(data, "two.p7", key); });
    EXPECT_EQ(e.kind(), ErrorKind::bad_password) << e.what();
    EXPECT_NE(std::string(e.what()).find("two.p7"), std::string::npos) << e.what();
}

}  // namespace
}  // namespace p11vault
