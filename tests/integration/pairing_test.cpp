// SPDX-License-Identifier: Apache-2.0
// One key/certificate pairing for verify and restore (issue 21, item 4; src/pkcs12/pairing.hpp):
// a key bag whose localKeyID names a certificate of another key is refused by both, with
// the same words, whichever path restore takes (token-unwrap proves the key the token
// unwrapped, host-decrypt compares on the host), and the token is left as it was.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_pfx.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

class PairingTest : public ::testing::TestWithParam<std::tuple<Backend, std::string>> {
protected:
    PairingTest() : token_(std::get<0>(GetParam())) {
        // Something on the token before each run, so "unchanged" is not just "empty".
        auto session = token_.open_session();
        certify(*session, generate_ec(*session, "P-256", {0xbb}, "bystander"));
    }

    std::string algorithm() const { return std::get<1>(GetParam()); }

    TestToken token_;
};

TEST_P(PairingTest, KeyWhoseLocalKeyIdNamesAnotherKeysCertificateIsRefusedByVerifyAndRestoreAlike) {
    const HostCredential key = make_host_credential(token_.dir(), "key", algorithm());
    const HostCredential other = make_host_credential(token_.dir(), "other", algorithm());
    const std::string file = token_.dir() + "/mislabelled.p12";
    ASSERT_NO_FATAL_FAILURE(write_test_pfx(file, {{key.key.get(), other.cert.get(), {0x0c}, "mislabelled"}}));
    const std::string expected_start = "p11vault: error: key bag 1 (id=0c label=\"mislabelled\") does not match its "
                                       "certificate ";
    const std::string expected_reason = " (same localKeyID, different public key)";

    RunOptions options;
    options.env[kPasswordVariable] = kTestPassword;
    const RunResult verified =
        run_p11vault({"verify", "--in", file, "--password", std::string("env:") + kPasswordVariable}, options);
    EXPECT_EQ(verified.exit_code, 4) << verified.err;
    ASSERT_EQ(verified.err_lines().size(), 1u) << verified.err;
    const std::string verify_error = verified.err_lines().front();
    EXPECT_EQ(verify_error.rfind(expected_start, 0), 0u) << verify_error;
    EXPECT_NE(verify_error.find(expected_reason), std::string::npos) << verify_error;

    const auto before = token_.objects();
    const RunResult restored = restore(token_, file, {"--json"});
    EXPECT_EQ(restored.exit_code, 4) << restored.err;
    ASSERT_EQ(restored.err_lines().size(), 1u) << restored.err;
    // verify's message, word for word (restore may add what it undid after it).
    EXPECT_EQ(restored.err_lines().front().rfind(verify_error, 0), 0u)
        << "restore: " << restored.err_lines().front() << "\nverify:  " << verify_error;
    EXPECT_EQ(token_.objects(), before) << "the refused key, or another object of the run, is left on the token";
}

std::string param_name(const ::testing::TestParamInfo<std::tuple<Backend, std::string>>& info) {
    return backend_name(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
}

INSTANTIATE_TEST_SUITE_P(Backends, PairingTest, ::testing::Combine(all_backends(), ::testing::Values("RSA", "EC")),
                         param_name);

}  // namespace
}  // namespace p11vault::testing
