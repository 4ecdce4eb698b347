// SPDX-License-Identifier: Apache-2.0
// run_filter (src/secret_filter.hpp), which hands a share text to qrencode: the child sees
// none of this process's environment (a variable may hold the secret) and is named by an
// absolute path, never looked up in PATH.
#include "src/secret_filter.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "p11vault/error.hpp"

namespace p11vault {
namespace {

std::string text_of(const SecretBytes& bytes) { return std::string(bytes.reveal_text()); }

TEST(SecretFilter, TheChildGetsAMinimalEnvironmentAndNoneOfOurs) {
    ASSERT_EQ(::setenv("P11VAULT_TEST_PW", "a secret in the environment", 1), 0);
    ASSERT_NE(::getenv("HOME"), nullptr) << "the test needs a variable of its own to look for";
    const std::uint8_t input[] = {'x'};
    // The shell reads its input first (a filter that exits before reading is an error),
    // then shows its environment; the shell itself may add PWD.
    const std::string environment =
        text_of(run_filter({"/bin/sh", "-c", "cat >/dev/null; exec /usr/bin/env"}, input, 4096, ""));
    ::unsetenv("P11VAULT_TEST_PW");
    EXPECT_NE(environment.find("PATH=/usr/bin:/bin\n"), std::string::npos) << environment;
    EXPECT_NE(environment.find("LC_ALL=C\n"), std::string::npos) << environment;
    EXPECT_EQ(environment.find("a secret in the environment"), std::string::npos) << environment;
    EXPECT_EQ(environment.find("HOME="), std::string::npos) << environment;
}

TEST(SecretFilter, TheInputArrivesOnStdinAndStdoutComesBack) {
    const std::string text = "share 1 of 3\nline two\n";
    const SecretBytes output =
        run_filter({"/bin/cat"}, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, 4096, "");
    EXPECT_EQ(text_of(output), text);
}

TEST(SecretFilter, AProgramNotGivenByAbsolutePathIsRefused) {
    const std::uint8_t input[] = {'x'};
    try {
        (void)run_filter({"cat"}, input, 4096, " (hint)");
        ADD_FAILURE() << "a PATH lookup must not happen";
    } catch (const Error& error) {
        EXPECT_EQ(error.kind(), ErrorKind::failure);
        EXPECT_NE(std::string(error.what()).find("not an absolute program path (hint)"), std::string::npos)
            << error.what();
    }
}

TEST(SecretFilter, FindsSystemProgramsOnly) {
    EXPECT_EQ(find_system_program("env"), "/usr/bin/env");
    EXPECT_EQ(find_system_program("no-such-program-p11vault"), "");
}

}  // namespace
}  // namespace p11vault
