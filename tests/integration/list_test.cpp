// SPDX-License-Identifier: Apache-2.0
// `p11vault list`, run as a script would run it (the built binary, a child process)
// against throw-away tokens: what `list --json` reports for keys made through our own
// PKCS#11 layer and by other tools (softhsm2-util, pkcs11-tool), token selection, and the
// exit codes and single error line of the contract (docs/cli.md).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

constexpr const char* pin_variable = "P11VAULT_TEST_PIN";

// Runs p11vault with the token's environment (SOFTHSM2_CONF) and its user PIN in
// $P11VAULT_TEST_PIN.
RunResult run_with_token(const TestToken& token, const std::vector<std::string>& args,
                         const std::string& pin_value = {}) {
    RunOptions options;
    add_env_entries(options, token.env_for_child());
    options.env[pin_variable] = pin_value.empty() ? token.user_pin() : pin_value;
    return run_p11vault(args, options);
}

std::vector<std::string> list_args(const TestToken& token, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"list"};
    const auto token_args = token.cli_token_args();
    args.insert(args.end(), token_args.begin(), token_args.end());
    args.insert(args.end(), {"--pin", std::string("env:") + pin_variable});
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

// `list --json` for the token, checked to be one JSON document with nothing on stderr.
json list_json(const TestToken& token) {
    const RunResult result = run_with_token(token, list_args(token, {"--json"}));
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.err, "");
    json document;
    EXPECT_NO_THROW(document = json::parse(result.out)) << result.out;  // parse() rejects trailing data
    return document;
}

// The one listed object of `object_class` with CKA_ID `id` (hex).
json find_object(const json& document, const std::string& object_class, const std::string& id) {
    json found;
    int matches = 0;
    for (const auto& object : document.at("objects")) {
        if (object.at("class") == object_class && object.at("id") == id) {
            found = object;
            ++matches;
        }
    }
    EXPECT_EQ(matches, 1) << object_class << " id=" << id << " in " << document.dump(2);
    return found;
}

class ListTest : public ::testing::TestWithParam<Backend> {};

TEST_P(ListTest, ReportsKeysMadeThroughOurLayer) {
    TestToken token(GetParam());
    {
        auto session = token.open_session();
        const TestKey rsa = generate_rsa(*session, 2048, {0x01, 0xab}, "rsa key", {.sensitive = true, .extractable = true});
        generate_ec(*session, "P-256", {0x02}, "ec key", {.sensitive = true, .extractable = false});
        certify(*session, rsa);
    }
    const json document = list_json(token);
    EXPECT_EQ(document.at("format"), "p11vault.list/1");
    EXPECT_EQ(document.at("module").at("path"), token.module_path());
    EXPECT_EQ(document.at("token").at("label"), token.label());
    int listed_with_label = 0;
    for (const auto& listed : document.at("tokens")) {
        if (listed.at("label") != token.label()) continue;
        ++listed_with_label;
        EXPECT_EQ(listed, document.at("token"));
    }
    EXPECT_EQ(listed_with_label, 1);
    EXPECT_TRUE(document.at("token").at("flags").at("login_required"));

    const json rsa = find_object(document, "private-key", "01ab");
    EXPECT_EQ(rsa.at("label"), "rsa key");
    EXPECT_EQ(rsa.at("key_type"), "RSA");
    EXPECT_EQ(rsa.at("algorithm"), "RSA-2048");
    EXPECT_EQ(rsa.at("bits"), 2048);
    EXPECT_TRUE(rsa.at("curve").is_null());
    EXPECT_EQ(rsa.at("sensitive"), true);
    EXPECT_EQ(rsa.at("extractable"), true);
    EXPECT_EQ(rsa.at("never_extractable"), false);
    EXPECT_EQ(rsa.at("always_sensitive"), true);
    ASSERT_TRUE(rsa.at("certificate").is_object()) << rsa.dump(2);
    EXPECT_EQ(rsa.at("certificate").at("id"), "01ab");
    EXPECT_EQ(rsa.at("certificate").at("subject").get<std::string>().rfind("CN=rsa key,", 0), 0u);
    EXPECT_EQ(rsa.at("public_key").at("id"), "01ab");

    const json certificate = find_object(document, "certificate", "01ab");
    EXPECT_EQ(certificate.at("subject"), rsa.at("certificate").at("subject"));
    EXPECT_EQ(certificate.at("private_key").at("id"), "01ab");
    EXPECT_EQ(certificate.at("algorithm"), "RSA-2048");
    ASSERT_TRUE(rsa.at("spki_sha256").is_string());
    EXPECT_EQ(certificate.at("spki_sha256"), rsa.at("spki_sha256"));
    EXPECT_EQ(rsa.at("spki_sha256").get<std::string>().size(), 64u);

    // An EC private key has no CKA_EC_POINT: its curve comes from CKA_EC_PARAMS and its
    // public key from the paired public key object.
    const json ec = find_object(document, "private-key", "02");
    EXPECT_EQ(ec.at("label"), "ec key");
    EXPECT_EQ(ec.at("key_type"), "EC");
    EXPECT_EQ(ec.at("algorithm"), "EC-P256");
    EXPECT_EQ(ec.at("curve"), "P-256");
    EXPECT_EQ(ec.at("bits"), 256);
    EXPECT_EQ(ec.at("sensitive"), true);
    EXPECT_EQ(ec.at("extractable"), false);
    EXPECT_TRUE(ec.at("certificate").is_null());
    const json ec_public = find_object(document, "public-key", "02");
    EXPECT_EQ(ec_public.at("algorithm"), "EC-P256");
    EXPECT_TRUE(ec_public.at("sensitive").is_null());  // not a property of public keys
    ASSERT_TRUE(ec_public.at("spki_sha256").is_string());
    EXPECT_EQ(ec.at("spki_sha256"), ec_public.at("spki_sha256"));
    EXPECT_EQ(ec_public.at("private_key").at("id"), "02");
}

TEST_P(ListTest, HumanOutputIsATableWithTheKeys) {
    TestToken token(GetParam());
    {
        auto session = token.open_session();
        generate_rsa(*session, 2048, {0x07}, "table-rsa");
    }
    const RunResult result = run_with_token(token, list_args(token));
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.err, "");
    EXPECT_NE(result.out.find("SLOT"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("private-key  RSA-2048"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("table-rsa"), std::string::npos) << result.out;
}

TEST_P(ListTest, WrongPinIsExit5WithOneErrorLine) {
    TestToken token(GetParam());
    const RunResult result = run_with_token(token, list_args(token, {"--json"}), "not-the-pin");
    EXPECT_EQ(result.exit_code, 5);
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    // The token's name and no retry; what follows depends on the PIN flags the token sets.
    EXPECT_EQ(result.err_lines().front().rfind("p11vault: error: C_Login: CKR_PIN_INCORRECT (token \"" + token.label() +
                                                   "\" refused the PIN; p11vault does not retry: check the --pin "
                                                   "source before trying again",
                                               0),
              0u)
        << result.err;
    // --json: the failure's p11vault.error/1 document, not a list document.
    const json document = json::parse(result.out);
    EXPECT_EQ(document.at("format"), "p11vault.error/1");
    EXPECT_EQ(document.at("exit_code"), 5);
    EXPECT_TRUE(document.at("items").empty());
}

TEST_P(ListTest, UnknownTokenLabelIsExit5) {
    TestToken token(GetParam());
    std::vector<std::string> args = list_args(token);
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == "--token-label") args[i + 1] = "no such token";
    }
    const RunResult result = run_with_token(token, args);
    EXPECT_EQ(result.exit_code, 5);
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_EQ(result.err_lines()[0].rfind("p11vault: error: no token matches --token-label \"no such token\"", 0), 0u)
        << result.err;
    EXPECT_NE(result.err.find(token.label()), std::string::npos) << "should list the tokens present: " << result.err;
}

TEST_P(ListTest, NoPinAndNoTerminalIsExit2) {
    TestToken token(GetParam());
    std::vector<std::string> args = {"list"};
    for (const auto& arg : token.cli_token_args()) args.push_back(arg);
    const RunResult result = run_with_token(token, args);  // stdin is a pipe
    EXPECT_EQ(result.exit_code, 2);
    EXPECT_EQ(result.err_lines(), std::vector<std::string>{"p11vault: error: no --pin given and stdin is not a "
                                                           "terminal: give --pin env:VAR, file:PATH, fd:N or stdin"});
}

TEST_P(ListTest, PinFromFileAndFromStdin) {
    TestToken token(GetParam());
    std::vector<std::string> args = {"list", "--json", "--pin", "file:" + token.write_pin_file()};
    for (const auto& arg : token.cli_token_args()) args.push_back(arg);
    RunResult result = run_with_token(token, args);
    EXPECT_EQ(result.exit_code, 0) << result.err;

    args[3] = "stdin";
    RunOptions options;
    add_env_entries(options, token.env_for_child());
    options.stdin_data = token.user_pin() + "\n";
    result = run_p11vault(args, options);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_TRUE(json::accept(result.out)) << result.out;
}

TEST_P(ListTest, VerboseLogsCallsButNeverThePin) {
    TestToken token(GetParam());
    const RunResult result = run_with_token(token, list_args(token, {"--json", "--verbose"}));
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_NE(result.err.find("p11vault: debug: "), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("C_Login"), std::string::npos) << result.err;
    EXPECT_EQ(result.err.find(token.user_pin()), std::string::npos) << result.err;
    EXPECT_EQ(result.out.find(token.user_pin()), std::string::npos);
    EXPECT_TRUE(json::accept(result.out)) << "debug lines must not reach stdout";
}

INSTANTIATE_TEST_SUITE_P(Backends, ListTest, all_backends(), BackendParamName());

// --- SoftHSM only: other tools' keys, selection rules ---------------------------------

// Runs a tool with the token's environment; fails the test when it fails.
void run_tool_or_fail(const TestToken& token, const std::vector<std::string>& argv) {
    RunOptions options;
    add_env_entries(options, token.env_for_child());
    const RunResult result = run(argv, options);
    ASSERT_EQ(result.exit_code, 0) << argv[0] << " failed:\n" << result.out << result.err;
}

TEST(ListSoftHsmTest, ReportsKeysMadeByOtherTools) {
    TestToken token(Backend::softhsm);
    const std::string key_file = token.dir() + "/imported.pem";
    run_tool_or_fail(token, {"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", key_file});
    run_tool_or_fail(token, {"softhsm2-util", "--import", key_file, "--token", token.label(), "--id", "0a", "--label",
                     "imported", "--pin", token.user_pin()});
    const std::vector<std::string> tool = {"pkcs11-tool", "--module", token.module_path(), "--token-label",
                                           token.label(), "--login", "--pin", token.user_pin()};
    auto with = [&](std::vector<std::string> more) {
        std::vector<std::string> argv = tool;
        argv.insert(argv.end(), more.begin(), more.end());
        return argv;
    };
    run_tool_or_fail(token, with({"--keypairgen", "--key-type", "rsa:2048", "--id", "0b", "--label", "tool-rsa", "--extractable"}));
    run_tool_or_fail(token, with({"--keypairgen", "--key-type", "EC:prime256v1", "--id", "0c", "--label", "tool-ec"}));
    {
        auto session = token.open_session();
        if (!generate_ed25519(*session, {0x0d}, "our-ed25519")) GTEST_SKIP() << "no Ed25519 on this token";
    }

    const json document = list_json(token);
    const json imported = find_object(document, "private-key", "0a");  // softhsm2-util: not exportable
    EXPECT_EQ(imported.at("label"), "imported");
    EXPECT_EQ(imported.at("algorithm"), "EC-P384");
    EXPECT_EQ(imported.at("curve"), "P-384");
    EXPECT_EQ(imported.at("bits"), 384);
    EXPECT_EQ(imported.at("sensitive"), true);
    EXPECT_EQ(imported.at("extractable"), false);

    const json tool_rsa = find_object(document, "private-key", "0b");  // pkcs11-tool --extractable
    EXPECT_EQ(tool_rsa.at("label"), "tool-rsa");
    EXPECT_EQ(tool_rsa.at("algorithm"), "RSA-2048");
    EXPECT_EQ(tool_rsa.at("sensitive"), true);
    EXPECT_EQ(tool_rsa.at("extractable"), true);
    EXPECT_EQ(tool_rsa.at("public_key").at("id"), "0b");
    EXPECT_EQ(tool_rsa.at("spki_sha256"), find_object(document, "public-key", "0b").at("spki_sha256"));

    const json tool_ec = find_object(document, "private-key", "0c");
    EXPECT_EQ(tool_ec.at("algorithm"), "EC-P256");
    EXPECT_EQ(tool_ec.at("sensitive"), true);
    EXPECT_EQ(tool_ec.at("spki_sha256"), find_object(document, "public-key", "0c").at("spki_sha256"));

    const json ed = find_object(document, "private-key", "0d");
    EXPECT_EQ(ed.at("key_type"), "EC_EDWARDS");
    EXPECT_EQ(ed.at("algorithm"), "Ed25519");
    EXPECT_EQ(ed.at("curve"), "Ed25519");
}

TEST(ListSoftHsmTest, PairsCertificateByPublicKeyWhenIdsDiffer) {
    TestToken token(Backend::softhsm);
    {
        auto session = token.open_session();
        const TestKey key = generate_rsa(*session, 2048, {0x21}, "key-21");
        const IssuedCert issued = TestCa::instance().issue(public_key_from_token(*session, key.public_key).get(), "other id");
        add_certificate(*session, issued.cert.get(), {0x99}, "cert-99");
    }
    const json document = list_json(token);
    const json key = find_object(document, "private-key", "21");
    ASSERT_TRUE(key.at("certificate").is_object()) << key.dump(2);
    EXPECT_EQ(key.at("certificate").at("id"), "99");
    EXPECT_EQ(key.at("certificate").at("subject").get<std::string>().rfind("CN=other id,", 0), 0u);
}

TEST(ListSoftHsmTest, SelectsTheOnlyInitializedTokenWithoutOptions) {
    TestToken token(Backend::softhsm);  // SoftHSM also offers one uninitialized token
    const RunResult result = run_with_token(token, {"list", "--json", "--module", token.module_path(), "--pin",
                                                    std::string("env:") + pin_variable});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = json::parse(result.out);
    EXPECT_EQ(document.at("tokens").size(), 2u);
    EXPECT_EQ(document.at("token").at("label"), token.label());
    EXPECT_TRUE(document.at("objects").is_array());
}

TEST(ListSoftHsmTest, SeveralTokensWithoutOptionsListsTokensOnly) {
    TestToken first(Backend::softhsm, "first");
    TestToken second(Backend::softhsm, "second");
    RunResult result = run_with_token(first, {"list", "--json", "--module", first.module_path()});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = json::parse(result.out);
    EXPECT_EQ(document.at("tokens").size(), 3u);
    EXPECT_TRUE(document.at("token").is_null());
    EXPECT_TRUE(document.at("objects").is_null());

    result = run_with_token(first, {"list", "--module", first.module_path()});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_NE(result.out.find("--token-label"), std::string::npos) << result.out;
}

TEST(ListSoftHsmTest, SelectsBySlotAndByUri) {
    TestToken first(Backend::softhsm, "first");
    TestToken second(Backend::softhsm, "second");
    const std::string pin = std::string("env:") + pin_variable;
    // Slot ids as a new process sees them (SoftHSM renumbers its slots at C_Initialize, so
    // TestToken::slot(), from this process, may differ).
    RunResult result = run_with_token(first, {"list", "--json", "--module", first.module_path()});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    std::map<std::string, std::string> slot_of;
    const json listing = json::parse(result.out);
    for (const auto& listed : listing.at("tokens")) {
        slot_of[listed.at("label").get<std::string>()] = std::to_string(listed.at("slot").get<unsigned long>());
    }
    ASSERT_EQ(slot_of.count("second"), 1u) << result.out;

    result = run_with_token(second, {"list", "--json", "--module", second.module_path(), "--slot", slot_of["second"],
                                     "--pin", pin});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(json::parse(result.out).at("token").at("label"), "second");

    result = run_with_token(first, {"list", "--json", "--module", first.module_path(), "--token",
                                    "pkcs11:token=first", "--pin", pin});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(json::parse(result.out).at("token").at("label"), "first");

    // Object attributes of the URI narrow the listing.
    {
        auto session = first.open_session();
        generate_rsa(*session, 2048, {0x31}, "wanted");
        generate_rsa(*session, 2048, {0x32}, "other");
    }
    result = run_with_token(first, {"list", "--json", "--module", first.module_path(), "--token",
                                    "pkcs11:token=first;id=%31;type=private", "--pin", pin});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json narrowed = json::parse(result.out);
    ASSERT_EQ(narrowed.at("objects").size(), 1u) << result.out;
    EXPECT_EQ(narrowed.at("objects")[0].at("label"), "wanted");
    EXPECT_EQ(narrowed.at("objects")[0].at("public_key").at("id"), "31");

    // Label and slot must both match.
    result = run_with_token(first, {"list", "--module", first.module_path(), "--token-label", "first", "--slot",
                                    slot_of["second"], "--pin", pin});
    EXPECT_EQ(result.exit_code, 5) << result.err;
}

TEST(ListSoftHsmTest, BadUriIsExit2) {
    TestToken token(Backend::softhsm);
    const RunResult result = run_with_token(token, {"list", "--token", "http://example.com/"});
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_EQ(result.err_lines().size(), 1u) << result.err;
}

// --- no token needed --------------------------------------------------------------

TEST(ListCliTest, MissingModuleFileIsExit5) {
    const RunResult result = run_p11vault({"list", "--module", "/nonexistent/libnothing.so"});
    EXPECT_EQ(result.exit_code, 5);
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_EQ(result.err_lines()[0].rfind("p11vault: error: ", 0), 0u) << result.err;
    EXPECT_NE(result.err.find("/nonexistent/libnothing.so"), std::string::npos) << result.err;
}

TEST(ListCliTest, BadOptionIsExit2WithOneErrorLine) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"list", "--no-such-option"}, {"list", "--slot", "not-a-number"}, {"no-such-command"}}) {
        const RunResult result = run_p11vault(args);
        EXPECT_EQ(result.exit_code, 2) << args.back() << ": " << result.err;
        ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
        EXPECT_EQ(result.err_lines()[0].rfind("p11vault: error: ", 0), 0u) << result.err;
        EXPECT_EQ(result.out, "");
    }
}

TEST(ListCliTest, NoSubcommandIsUsageExit2) {
    const RunResult result = run_p11vault({});
    EXPECT_EQ(result.exit_code, 2);
    EXPECT_NE(result.err.find("list"), std::string::npos) << result.err;
    EXPECT_EQ(result.err_lines().back().rfind("p11vault: error: ", 0), 0u) << result.err;
}

TEST(ListCliTest, HelpAndVersionExit0) {
    RunResult result = run_p11vault({"list", "--help"});
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_NE(result.out.find("--token-label"), std::string::npos) << result.out;
    result = run_p11vault({"--version"});
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_EQ(result.out.rfind("p11vault " P11VAULT_VERSION " (commit ", 0), 0u) << result.out;
    // The libraries it runs with, for bug reports and records.
    EXPECT_NE(result.out.find(") with OpenSSL 3."), std::string::npos) << result.out;
    EXPECT_NE(result.out.find(", p11-kit 0."), std::string::npos) << result.out;
}

}  // namespace
}  // namespace p11vault::testing
