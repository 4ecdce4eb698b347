// SPDX-License-Identifier: Apache-2.0
// The public API (include/p11vault/) in-process: backup to bytes, restore into a second
// token, migrate, verify; the error kinds; the Events sink and the SecretProvider (issue
// 21 item 3). The operations are called through the public headers only; the tokens are
// made and inspected with the test support (SoftHSM, the PKCS#11 layer).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "p11vault/backup.hpp"
#include "p11vault/error.hpp"
#include "p11vault/events.hpp"
#include "p11vault/key_result.hpp"
#include "p11vault/migrate.hpp"
#include "p11vault/restore.hpp"
#include "p11vault/token.hpp"
#include "p11vault/verify.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

#ifndef P11VAULT_EXAMPLE_BACKUP_AND_RESTORE
#error "P11VAULT_EXAMPLE_BACKUP_AND_RESTORE must name the example program (tests/CMakeLists.txt)"
#endif

namespace p11vault::testing {
namespace {

constexpr const char* kPassword = "Tr0ub4dor&3 backup password";

// Answers every request from fixed values and counts what was asked.
class CountingSecrets : public SecretProvider {
public:
    explicit CountingSecrets(std::string pin, std::string password = kPassword)
        : pin_(std::move(pin)), password_(std::move(password)) {}
    SecretBytes provide(const SecretRequest& request) override {
        ++asked[request.purpose];
        subjects.push_back(request.subject);
        return SecretBytes::from_text(request.purpose == SecretPurpose::token_pin ? pin_ : password_);
    }
    std::map<SecretPurpose, int> asked;
    std::vector<std::string> subjects;

private:
    std::string pin_, password_;
};

class RecordingEvents : public Events {
public:
    void warning(std::string_view text) override { warnings.emplace_back(text); }
    void progress(const ProgressEvent& event) override {
        progress_events.push_back({std::string(event.phase), event.done, event.total});
    }
    void token_opened(const TokenDescription& token) override { opened.push_back(token.label); }
    struct Progress {
        std::string phase;
        std::size_t done, total;
    };
    std::vector<std::string> warnings;
    std::vector<Progress> progress_events;
    std::vector<std::string> opened;
};

// What the process writes to file descriptor 2 while `body` runs.
std::string stderr_of(const std::function<void()>& body) {
    std::fflush(stderr);
    char path[] = "/tmp/p11vault-api-stderr-XXXXXX";
    const int capture = ::mkstemp(path);
    ::unlink(path);
    const int saved = ::dup(2);
    ::dup2(capture, 2);
    try {
        body();
    } catch (...) {
        std::fflush(stderr);
        ::dup2(saved, 2);
        ::close(saved);
        ::close(capture);
        throw;
    }
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    std::string text;
    ::lseek(capture, 0, SEEK_SET);
    char buffer[4096];
    for (ssize_t n; (n = ::read(capture, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
    ::close(capture);
    return text;
}

ErrorKind code_of(const std::function<void()>& body) {
    try {
        body();
    } catch (const Error& e) {
        return e.kind();
    }
    ADD_FAILURE() << "no p11vault::Error thrown";
    return ErrorKind::failure;  // the test has failed already
}

TokenSpec spec_of(const TestToken& token) {
    TokenSpec spec;
    spec.module = token.module_path();
    spec.label = token.label();
    return spec;
}

class ApiTest : public ::testing::Test {
protected:
    ApiTest() : source_(Backend::softhsm, "api-source"), target_(Backend::softhsm, "api-target") {
        auto session = source_.open_session();
        key_ = generate_rsa(*session, 2048, {0x01}, "api-rsa");
        certify(*session, key_);
    }

    BackupSpec backup_spec() const {
        BackupSpec spec;
        spec.token = spec_of(source_);
        spec.keys.all = true;
        spec.iterations = 2000;
        return spec;
    }

    static CK_OBJECT_HANDLE find_key(pkcs11::Session& session, CK_OBJECT_CLASS object_class) {
        pkcs11::AttributeTemplate match;
        match.add_class(object_class).add_bytes(CKA_ID, pkcs11::Bytes{0x01});
        const auto handles = session.find(match, 2);
        if (handles.size() != 1) throw std::runtime_error("not one key of id 01");
        return handles.front();
    }

    // Signs with the key of id 01 on `token` and checks the signature with the source
    // key's public key: the restored key is the same key. (Handles are looked up again:
    // SoftHSM forgets them when the last session of a token closes.)
    void expect_signs_as_source(const TestToken& token) {
        auto session = token.open_session();
        const std::vector<std::uint8_t> message = {'a', 'p', 'i'};
        const auto signature = sign_for_openssl(*session, find_key(*session, CKO_PRIVATE_KEY), CKK_RSA, message);
        auto source_session = source_.open_session();
        EXPECT_TRUE(openssl_verify(public_key_from_token(*source_session, find_key(*source_session, CKO_PUBLIC_KEY)).get(),
                                   message, signature));
    }

    TestToken source_, target_;
    TestKey key_;
};

TEST_F(ApiTest, BackupToBytesRestoresIntoASecondTokenThatSignsAndVerifies) {
    CountingSecrets secrets(source_.user_pin());
    RecordingEvents events;
    const BackupReport backed_up = p11vault::backup(backup_spec(), secrets, events);
    ASSERT_EQ(backed_up.keys.size(), 1u);
    EXPECT_EQ(backed_up.keys[0].id, std::vector<std::uint8_t>{0x01});
    EXPECT_EQ(backed_up.keys[0].label, "api-rsa");
    EXPECT_EQ(backed_up.keys[0].type, "RSA-2048");
    EXPECT_EQ(backed_up.keys[0].status, "ok");
    // SoftHSM's RSA key is extractable and sensitive: it leaves by the host-reencrypt path.
    EXPECT_EQ(backed_up.keys[0].path, KeyPath::host_reencrypt) << key_path_name(backed_up.keys[0].path);
    EXPECT_EQ(backed_up.certificates, 1u);
    EXPECT_FALSE(backed_up.file.empty());
    EXPECT_EQ(backed_up.file_sha256.size(), 32u);
    EXPECT_EQ(backed_up.token.label, "api-source");
    EXPECT_EQ(events.opened, std::vector<std::string>{"api-source"});

    RestoreSpec restore_spec;
    restore_spec.token = spec_of(target_);
    restore_spec.file = backed_up.file;
    restore_spec.file_name = "memory";
    const RestoreReport restored = p11vault::restore(restore_spec, secrets, events);
    ASSERT_EQ(restored.keys.size(), 1u);
    EXPECT_EQ(restored.keys[0].status, "restored");
    EXPECT_NE(restored.keys[0].path, KeyPath::none);
    EXPECT_EQ(restored.certificates_written, 1u);
    expect_signs_as_source(target_);

    VerifySpec verify_spec;
    verify_spec.file = backed_up.file;
    verify_spec.file_name = "memory";
    verify_spec.compare_with = spec_of(target_);
    const VerifyReport verified = p11vault::verify(verify_spec, secrets, events);
    ASSERT_EQ(verified.keys.size(), 1u);
    EXPECT_EQ(verified.keys[0].type, "RSA-2048");
    ASSERT_TRUE(verified.comparison);
    EXPECT_TRUE(verified.comparison->same());
    EXPECT_EQ(verified.comparison->matched, 1u);
    EXPECT_EQ(secrets.asked[SecretPurpose::new_file_password], 1);
    EXPECT_EQ(secrets.asked[SecretPurpose::file_password], 2);  // restore, verify
    EXPECT_EQ(secrets.asked[SecretPurpose::token_pin], 3);      // source, target, target
}

TEST_F(ApiTest, BackupWritesOutAtomicallyAndRefusesAnExistingFileBeforeAskingAnything) {
    const std::string out = source_.dir() + "/api.p12";
    BackupSpec spec = backup_spec();
    spec.out = out;
    CountingSecrets secrets(source_.user_pin());
    RecordingEvents events;
    const BackupReport report = p11vault::backup(spec, secrets, events);
    std::ifstream in(out, std::ios::binary);
    const std::vector<std::uint8_t> written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(written, report.file);
    EXPECT_EQ(std::filesystem::status(out).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

    CountingSecrets again(source_.user_pin());
    EXPECT_EQ(code_of([&] { p11vault::backup(spec, again, events); }), ErrorKind::refused);
    EXPECT_TRUE(again.asked.empty()) << "a pre-check failed: no PIN or password may be asked for";
}

TEST_F(ApiTest, MigrateMovesTheKeyAndSaysBothPaths) {
    MigrateSpec spec;
    spec.from = spec_of(source_);
    spec.to = spec_of(target_);
    spec.keys.all = true;
    CountingSecrets secrets(source_.user_pin());
    RecordingEvents events;
    const MigrateReport report = p11vault::migrate(spec, secrets, events);
    ASSERT_EQ(report.keys.size(), 1u);
    EXPECT_EQ(report.keys[0].status, "restored");
    EXPECT_EQ(report.keys[0].source_path, KeyPath::host_reencrypt);
    EXPECT_NE(report.keys[0].path, KeyPath::none);
    EXPECT_EQ(report.from.label, "api-source");
    EXPECT_EQ(report.to.label, "api-target");
    EXPECT_EQ(secrets.subjects, (std::vector<std::string>{"token \"api-source\"", "token \"api-target\""}));
    EXPECT_FALSE(events.progress_events.empty());
    EXPECT_EQ(events.progress_events.front().phase, "migrate");
    expect_signs_as_source(target_);
}

TEST_F(ApiTest, AWrongPasswordIsBadPasswordBeforeTheTokenIsOpened) {
    CountingSecrets secrets(source_.user_pin());
    RecordingEvents events;
    const BackupReport backed_up = p11vault::backup(backup_spec(), secrets, events);
    const auto before = target_.objects();
    RestoreSpec spec;
    spec.token = spec_of(target_);
    spec.file = backed_up.file;
    CountingSecrets wrong(target_.user_pin(), "not the password");
    EXPECT_EQ(code_of([&] { p11vault::restore(spec, wrong, events); }), ErrorKind::bad_password);
    EXPECT_EQ(wrong.asked[SecretPurpose::file_password], 1);
    EXPECT_EQ(wrong.asked.count(SecretPurpose::token_pin), 0u) << "the PIN is not asked for a file that does not open";
    EXPECT_EQ(target_.objects(), before);
}

TEST_F(ApiTest, AConflictIsRefusedAndLeavesTheTokenAsItWas) {
    CountingSecrets secrets(source_.user_pin());
    RecordingEvents events;
    RestoreSpec spec;
    spec.token = spec_of(target_);
    spec.file = p11vault::backup(backup_spec(), secrets, events).file;
    p11vault::restore(spec, secrets, events);
    const auto before = target_.objects();
    EXPECT_EQ(code_of([&] { p11vault::restore(spec, secrets, events); }), ErrorKind::refused);
    EXPECT_EQ(target_.objects(), before);
}

// Parallel sessions through the library: the restored key signs for the source's public key.
TEST_F(ApiTest, RestoreOverFourSessionsSignsAsTheSource) {
    CountingSecrets secrets(source_.user_pin());
    RecordingEvents events;
    BackupSpec backup = backup_spec();
    backup.jobs = 4;
    RestoreSpec spec;
    spec.token = spec_of(target_);
    spec.file = p11vault::backup(backup, secrets, events).file;
    spec.jobs = 4;
    const RestoreReport restored = p11vault::restore(spec, secrets, events);
    ASSERT_EQ(restored.keys.size(), 1u);
    EXPECT_EQ(restored.keys[0].status, "restored");
    EXPECT_TRUE(restored.warnings.empty()) << restored.warnings.front();
    expect_signs_as_source(target_);
}

// More sessions than kMaxJobs is a usage error, raised before any secret is asked for.
TEST_F(ApiTest, JobsOverTheLimitAreAUsageErrorBeforeAnythingIsAsked) {
    const auto before = target_.objects();
    CountingSecrets secrets(source_.user_pin());
    RecordingEvents events;
    BackupSpec backup = backup_spec();
    backup.jobs = kMaxJobs + 1;
    EXPECT_EQ(code_of([&] { p11vault::backup(backup, secrets, events); }), ErrorKind::usage);
    RestoreSpec restore;
    restore.token = spec_of(target_);
    restore.file = {0x30, 0x00};
    restore.jobs = kMaxJobs + 1;
    EXPECT_EQ(code_of([&] { p11vault::restore(restore, secrets, events); }), ErrorKind::usage);
    VerifySpec verify;
    verify.file = restore.file;
    verify.drill_jobs = kMaxJobs + 1;
    EXPECT_EQ(code_of([&] { p11vault::verify(verify, secrets, events); }), ErrorKind::usage);
    EXPECT_TRUE(secrets.asked.empty());
    EXPECT_EQ(target_.objects(), before);
}

TEST_F(ApiTest, AMissingTokenIsATokenErrorAndAsksForNothing) {
    BackupSpec spec = backup_spec();
    spec.token.label = "no-such-token";
    CountingSecrets secrets(source_.user_pin());
    RecordingEvents events;
    EXPECT_EQ(code_of([&] { p11vault::backup(spec, secrets, events); }), ErrorKind::token);
    EXPECT_TRUE(secrets.asked.empty());
    EXPECT_TRUE(events.opened.empty());
}

TEST_F(ApiTest, WarningsAndProgressReachTheSinkAndNothingReachesStderr) {
    // SoftHSM sets CKF_USER_PIN_COUNT_LOW after a wrong PIN: the next run warns.
    CountingSecrets wrong_pin("not-the-pin");
    RecordingEvents ignored;
    EXPECT_EQ(code_of([&] { p11vault::backup(backup_spec(), wrong_pin, ignored); }), ErrorKind::token);
    EXPECT_EQ(wrong_pin.asked[SecretPurpose::token_pin], 1) << "a PIN is never tried twice";
    EXPECT_EQ(wrong_pin.asked.count(SecretPurpose::new_file_password), 0u);

    CountingSecrets secrets(source_.user_pin());
    RecordingEvents events;
    const std::string written = stderr_of([&] { p11vault::backup(backup_spec(), secrets, events); });
    EXPECT_EQ(written, "");
    ASSERT_EQ(events.warnings.size(), 1u);
    EXPECT_NE(events.warnings[0].find("token \"api-source\": a wrong PIN was entered recently; few tries left"),
              std::string::npos)
        << events.warnings[0];
    ASSERT_FALSE(events.progress_events.empty());
    EXPECT_EQ(events.progress_events.front().phase, "backup");
    EXPECT_EQ(events.progress_events.back().done, 1u);
    EXPECT_EQ(events.progress_events.back().total, 1u);
}

TEST_F(ApiTest, ListingNamesTheTokensAndTheSelectedTokensObjects) {
    CountingSecrets secrets(source_.user_pin());
    RecordingEvents events;
    const TokenListing listing = p11vault::list_tokens(spec_of(source_), secrets, events);
    ASSERT_TRUE(listing.selected);
    EXPECT_EQ(listing.selected->label, "api-source");
    EXPECT_EQ(listing.module.path, source_.module_path());
    bool private_key_with_certificate = false;
    for (const auto& object : listing.objects)
        if (object.object_class == ObjectClass::private_key && object.certificate &&
            object.certificate->subject.value_or("").find("CN=api-rsa") != std::string::npos)
            private_key_with_certificate = true;
    EXPECT_TRUE(private_key_with_certificate);
}

TEST_F(ApiTest, TheExampleBacksUpRestoresAndProvesTheCopy) {
    RunOptions options;
    add_env_entries(options, source_.env_for_child());
    options.env["P11VAULT_EXAMPLE_PIN"] = source_.user_pin();
    options.env["P11VAULT_EXAMPLE_PASSWORD"] = kPassword;
    const RunResult result =
        run({P11VAULT_EXAMPLE_BACKUP_AND_RESTORE, source_.module_path(), source_.label(), target_.label()}, options);
    EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
    EXPECT_NE(result.out.find("backed up api-rsa (RSA-2048) by host-reencrypt"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("signed and verified"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("the target token holds the 1 key(s) of the backup"), std::string::npos) << result.out;
    expect_signs_as_source(target_);
}

TEST(KeyPathNames, AreTheWordsOfDocsJson) {
    EXPECT_STREQ(key_path_name(KeyPath::none), "");
    EXPECT_STREQ(key_path_name(KeyPath::token_wrap), "token-wrap");
    EXPECT_STREQ(key_path_name(KeyPath::token_wrap_legacy), "token-wrap-legacy");
    EXPECT_STREQ(key_path_name(KeyPath::host_reencrypt), "host-reencrypt");
    EXPECT_STREQ(key_path_name(KeyPath::attribute_read), "attribute-read");
    EXPECT_STREQ(key_path_name(KeyPath::token_unwrap), "token-unwrap");
    EXPECT_STREQ(key_path_name(KeyPath::token_unwrap_legacy), "token-unwrap-legacy");
    EXPECT_STREQ(key_path_name(KeyPath::host_decrypt), "host-decrypt");
}

}  // namespace
}  // namespace p11vault::testing
