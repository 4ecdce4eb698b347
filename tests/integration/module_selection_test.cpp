// SPDX-License-Identifier: Apache-2.0
// Which PKCS#11 module p11vault loads (docs/cli.md, "Selecting a token"): without
// --module and $P11VAULT_MODULE, p11-kit's proxy, so every module registered with p11-kit
// is reachable; --module and $P11VAULT_MODULE take a path or a p11-kit module name.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

// The child sees the test token's SoftHSM configuration and no module variable.
RunOptions token_environment(const TestToken& token) {
    RunOptions options;
    add_env_entries(options, token.env_for_child());
    options.unset_env = {"P11VAULT_MODULE", "P11VAULT_MODULE_INIT"};
    return options;
}

nlohmann::json list_json(const TestToken& token, const std::vector<std::string>& module_args,
                         const RunOptions& options) {
    std::vector<std::string> args = {"list", "--json", "--pin", "file:" + token.write_pin_file()};
    args.insert(args.end(), module_args.begin(), module_args.end());
    const RunResult result = run_p11vault(args, options);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return result.exit_code == 0 ? nlohmann::json::parse(result.out) : nlohmann::json();
}

bool lists_token(const nlohmann::json& document, const std::string& label) {
    for (const auto& token : document.value("tokens", nlohmann::json::array())) {
        if (token.value("label", "") == label) return true;
    }
    return false;
}

TEST(ModuleSelection, WithoutModuleTheP11KitProxyReachesTheRegisteredSoftHsm) {
    TestToken token(Backend::softhsm);
    const nlohmann::json document = list_json(token, {}, token_environment(token));
    EXPECT_EQ(document["module"]["path"], "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so") << document.dump(2);
    EXPECT_TRUE(lists_token(document, token.label())) << document.dump(2);
}

TEST(ModuleSelection, AP11KitModuleNameSelectsThatModule) {
    TestToken token(Backend::softhsm);
    const nlohmann::json document = list_json(token, {"--module", "softhsm2"}, token_environment(token));
    EXPECT_EQ(document["module"]["path"], "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so") << document.dump(2);
    EXPECT_TRUE(lists_token(document, token.label())) << document.dump(2);

    RunOptions by_environment = token_environment(token);
    by_environment.env["P11VAULT_MODULE"] = "softhsm2";
    const nlohmann::json from_environment = list_json(token, {}, by_environment);
    EXPECT_EQ(from_environment["module"]["path"], "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so");
}

TEST(ModuleSelection, AnUnknownModuleNameIsExit5NamingTheRegisteredOnes) {
    TestToken token(Backend::softhsm);
    const RunResult result = run_p11vault({"list", "--module", "no-such-module"}, token_environment(token));
    EXPECT_EQ(result.exit_code, 5) << result.err;
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_NE(result.err.find("\"no-such-module\""), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("softhsm2"), std::string::npos) << result.err;
}

TEST(ModuleSelection, APathStillLoadsThatLibrary) {
    TestToken token(Backend::softhsm);
    const nlohmann::json document = list_json(token, {"--module", token.module_path()}, token_environment(token));
    EXPECT_EQ(document["module"]["path"], token.module_path());
    EXPECT_TRUE(lists_token(document, token.label())) << document.dump(2);
}

// --- the module and PIN a --token URI names (issue 18, item 6) ------------------------

std::string uri_of(const TestToken& token, const std::string& query) {
    return "pkcs11:token=" + pct_text(token.label()) + (query.empty() ? "" : "?" + query);
}

// `list --json --token URI` with nothing else but `extra`; stdin is a pipe (no prompt).
RunResult list_by_uri(const TestToken& token, const std::string& uri, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"list", "--json", "--token", uri};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_p11vault(args, token_environment(token));
}

void expect_one_error(const RunResult& result, int exit_code, const std::string& part) {
    EXPECT_EQ(result.exit_code, exit_code) << result.err;
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_EQ(result.err.rfind("p11vault: error: ", 0), 0u) << result.err;
    EXPECT_NE(result.err.find(part), std::string::npos) << result.err;
}

TEST(ModuleSelection, UriModulePathSelectsThatModule) {
    TestToken token(Backend::softhsm);
    const std::string pin = "--pin=file:" + token.write_pin_file();
    const RunResult result = list_by_uri(token, uri_of(token, "module-path=/usr/lib/softhsm/libsofthsm2.so"), {pin});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const nlohmann::json document = nlohmann::json::parse(result.out);
    EXPECT_EQ(document["module"]["path"], "/usr/lib/softhsm/libsofthsm2.so") << document.dump(2);
    EXPECT_TRUE(lists_token(document, token.label())) << document.dump(2);

    const RunResult by_name = list_by_uri(token, uri_of(token, "module-name=softhsm2"), {pin});
    ASSERT_EQ(by_name.exit_code, 0) << by_name.err;
    EXPECT_EQ(nlohmann::json::parse(by_name.out)["module"]["path"], "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so");

    // The URI is more specific than the environment's default.
    RunOptions with_environment = token_environment(token);
    with_environment.env["P11VAULT_MODULE"] = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so";
    const RunResult over_environment = run_p11vault(
        {"list", "--json", pin, "--token", uri_of(token, "module-path=/usr/lib/softhsm/libsofthsm2.so")},
        with_environment);
    ASSERT_EQ(over_environment.exit_code, 0) << over_environment.err;
    EXPECT_EQ(nlohmann::json::parse(over_environment.out)["module"]["path"], "/usr/lib/softhsm/libsofthsm2.so");
}

TEST(ModuleSelection, UriModulePathThatDoesNotLoadIsExit5NamingIt) {
    TestToken token(Backend::softhsm);
    const RunResult result = list_by_uri(token, uri_of(token, "module-path=/nonexistent/libnothing.so"),
                                         {"--pin=file:" + token.write_pin_file()});
    expect_one_error(result, 5, "cannot load PKCS#11 module /nonexistent/libnothing.so");
    EXPECT_NE(result.err.find("check the module-path or module-name of --token"), std::string::npos) << result.err;
}

TEST(ModuleSelection, ModuleOptionAndUriModuleThatDisagreeAreExit2) {
    TestToken token(Backend::softhsm);
    const RunResult result = list_by_uri(token, uri_of(token, "module-path=/usr/lib/softhsm/libsofthsm2.so"),
                                         {"--module", "p11-kit-trust", "--pin=file:" + token.write_pin_file()});
    expect_one_error(result, 2, "--module p11-kit-trust and the module of --token (/usr/lib/softhsm/libsofthsm2.so) "
                                "disagree");
    // The same library under two names agrees.
    const RunResult agreeing = list_by_uri(token, uri_of(token, "module-path=/usr/lib/softhsm/libsofthsm2.so"),
                                           {"--module", "softhsm2", "--pin=file:" + token.write_pin_file()});
    EXPECT_EQ(agreeing.exit_code, 0) << agreeing.err;
}

TEST(ModuleSelection, UriPinSourceFileLogsIn) {
    TestToken token(Backend::softhsm);
    const std::string pin_file = token.write_pin_file();
    for (const std::string& source : {"file:" + pin_file, pin_file, "file://" + pin_file}) {
        SCOPED_TRACE(source);
        const RunResult result =
            list_by_uri(token, uri_of(token, "module-name=softhsm2&pin-source=" + pct_text(source)));
        ASSERT_EQ(result.exit_code, 0) << result.err;
        EXPECT_TRUE(lists_token(nlohmann::json::parse(result.out), token.label()));
    }
    // --pin's rules: a missing file is named, as the URI's pin-source.
    const RunResult missing =
        list_by_uri(token, uri_of(token, "module-name=softhsm2&pin-source=file:" + token.dir() + "/no-pin"));
    expect_one_error(missing, 2, "the pin-source of --token: file:" + token.dir() + "/no-pin: no such file");
}

TEST(ModuleSelection, PinAndUriPinSourceTogetherAreExit2) {
    TestToken token(Backend::softhsm);
    const std::string pin_file = token.write_pin_file();
    const RunResult result = list_by_uri(token, uri_of(token, "module-name=softhsm2&pin-source=file:" + pin_file),
                                         {"--pin", "file:" + pin_file});
    expect_one_error(result, 2, "--pin and the pin-source of --token both give the PIN");
}

TEST(ModuleSelection, UriPinValueIsExit2WithoutThePin) {
    TestToken token(Backend::softhsm);
    const std::string& pin = token.user_pin();
    ASSERT_GE(pin.size(), 4u);
    const RunResult result = list_by_uri(token, uri_of(token, "module-name=softhsm2&pin-value=" + pct_text(pin)));
    expect_one_error(result, 2, "pin-value is refused");
    EXPECT_EQ(result.err.find(pin), std::string::npos) << "the PIN is in the message";
    EXPECT_EQ(result.out.find(pin), std::string::npos);
}

TEST(ModuleSelection, UriAttributesP11vaultDoesNotSupportAreNamed) {
    TestToken token(Backend::softhsm);
    expect_one_error(list_by_uri(token, uri_of(token, "") + ";library-version=2"), 2,
                     "p11vault does not support the attribute library-version");
    expect_one_error(list_by_uri(token, uri_of(token, "x-frob=1")), 2,
                     "p11vault does not support the query attribute x-frob");
}

// Every URI option: migrate's --from-token and --to-token refuse the same way.
TEST(ModuleSelection, MigrateTokenUrisFollowTheSameRules) {
    TestToken token(Backend::softhsm);
    const std::string pin_file = token.write_pin_file();
    RunOptions options = token_environment(token);
    const RunResult pin_value = run_p11vault({"migrate", "--all", "--from-token", uri_of(token, "pin-value=1234"),
                                              "--to-token-label", "x", "--to-pin", "file:" + pin_file},
                                             options);
    expect_one_error(pin_value, 2, "pin-value is refused");
    const RunResult conflict =
        run_p11vault({"migrate", "--all", "--from-token-label", token.label(), "--from-pin", "file:" + pin_file,
                      "--to-token", uri_of(token, "pin-source=file:" + pin_file), "--to-pin", "file:" + pin_file},
                     options);
    expect_one_error(conflict, 2, "--to-pin and the pin-source of --to-token both give the PIN");
    const RunResult disagree = run_p11vault(
        {"migrate", "--all", "--from-token-label", token.label(), "--from-pin", "file:" + pin_file, "--to-module",
         "p11-kit-trust", "--to-token", uri_of(token, "module-name=softhsm2"), "--to-pin", "file:" + pin_file},
        options);
    expect_one_error(disagree, 2, "--to-module p11-kit-trust and the module of --to-token");
}

}  // namespace
}  // namespace p11vault::testing
