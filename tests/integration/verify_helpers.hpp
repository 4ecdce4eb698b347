// SPDX-License-Identifier: Apache-2.0
// Helpers of the `p11vault verify` tests (verify_test.cpp, verify_token_test.cpp): run
// verify as a script would, and check the contract's shapes of its output.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "tests/support/run.hpp"

namespace p11vault::testing::verify_helpers {

using nlohmann::json;

inline constexpr const char* kPasswordVariable = "P11VAULT_TEST_PW";
inline constexpr const char* kPinVariable = "P11VAULT_TEST_PIN";

inline std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
}

// `p11vault verify ARGS... --password env:P11VAULT_TEST_PW` with `password` in the variable.
// A file of the corpus (tests/corpus/pkcs12/, MANIFEST.tsv).
inline std::string corpus_file(const std::string& name) { return std::string(P11VAULT_CORPUS_DIR) + "/" + name; }

inline RunResult verify(std::vector<std::string> args, const std::string& password, RunOptions options = {}) {
    options.env[kPasswordVariable] = password;
    args.insert(args.begin(), "verify");
    args.insert(args.end(), {"--password", std::string("env:") + kPasswordVariable});
    return run_p11vault(args, options);
}

// The one JSON document on stdout (a failed expectation when there is none).
inline json stdout_json(const RunResult& result) {
    json document;
    EXPECT_NO_THROW(document = json::parse(result.out)) << "stdout is not one JSON document:\n" << result.out;
    return document;
}

// The contract's failure shape: exactly one `p11vault: error:` line (warnings may precede it),
// and no crash.
inline void expect_one_error_line(const RunResult& result) {
    EXPECT_LT(result.exit_code, 128) << "crashed (signal " << result.exit_code - 128 << ")\n" << result.err;
    int errors = 0;
    for (const auto& line : result.err_lines())
        if (line.rfind("p11vault: error:", 0) == 0) ++errors;
    EXPECT_EQ(errors, 1) << result.err;
}

}  // namespace p11vault::testing::verify_helpers
