// SPDX-License-Identifier: Apache-2.0
// Which PKCS#11 module p11vault loads (docs/cli.md, "Selecting a token"): without
// --module and $P11VAULT_MODULE, p11-kit's proxy, so every module registered with p11-kit
// is reachable; --module and $P11VAULT_MODULE take a path or a p11-kit module name.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
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

}  // namespace
}  // namespace p11vault::testing
