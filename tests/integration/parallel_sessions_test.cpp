// SPDX-License-Identifier: Apache-2.0
// Parallel sessions (issue 24, --jobs): restore, backup, migrate and the drill spread their
// per-key calls over sessions of one login, and what they produce does not depend on how
// many: the same objects, file, output and JSON as --jobs 1; a failure or an interrupt in
// any session rolls back what every session created; a token that allows fewer sessions
// gets fewer, with a warning. The runs go through the latency module (1 ms per call) in
// front of the fault module, whose stats prove that calls overlapped in several sessions.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tests/integration/fault_fixture.hpp"
#include "tests/support/test_ca.hpp"
#include "tests/support/test_keys.hpp"

namespace p11vault::testing {
namespace {

constexpr std::size_t kKeys = 8;

// A run's --json document without what differs between two runs of the same work: times.
nlohmann::json without_times(nlohmann::json document) {
    if (document.is_object()) {
        for (auto it = document.begin(); it != document.end();) {
            const std::string& name = it.key();
            if (name.find("time") != std::string::npos || name.find("duration") != std::string::npos ||
                name.find("elapsed") != std::string::npos || name.find("started") != std::string::npos ||
                name.find("finished") != std::string::npos)
                it = document.erase(it);
            else
                (*it = without_times(*it), ++it);
        }
    } else if (document.is_array()) {
        for (auto& item : document) item = without_times(item);
    }
    return document;
}

class ParallelSessionsTest : public FaultTest {
protected:
    // Eight keys with certificates on the source (two RSA, six EC), backed up by p11vault
    // into file_; a bystander key on the target.
    void SetUp() override {
        {
            auto session = source_.open_session();
            for (std::uint8_t k = 0; k < kKeys; ++k) {
                const std::string label = "parallel-" + std::to_string(k);
                certify(*session, k < 2 ? generate_rsa(*session, 2048, {static_cast<std::uint8_t>(0x20 + k)}, label)
                                        : generate_ec(*session, "P-256", {static_cast<std::uint8_t>(0x20 + k)}, label));
            }
        }
        file_ = source_.dir() + "/eight-keys.p12";
        const RunResult made = backup(source_, file_, {"--all", "--jobs", "1"});
        ASSERT_EQ(made.exit_code, 0) << describe(made);
        {
            auto session = target_.open_session();
            certify(*session, generate_ec(*session, "P-256", {0xbb}, "bystander"));
        }
        before_ = target_.objects();
    }

    std::string stats_path() const { return source_.dir() + "/latency.stats"; }

    // A run through latency -> fault (a token of eight sessions) -> SoftHSM, and its stats.
    FaultedRun run_parallel(const TestToken& token, const std::string& subcommand, const std::vector<std::string>& args,
                            FaultSpec spec = {}) {
        spec.sessions = kKeys;
        spec.latency_stats = stats_path();
        if (spec.function.empty() && spec.at == 0) spec.rv = "CKR_OK";
        return run_faulted(token, log_path(), subcommand, args, spec);
    }

    LatencyStats stats() const {
        const std::optional<LatencyStats> stats = read_latency_stats(stats_path());
        EXPECT_TRUE(stats) << "no stats in " << stats_path();
        return stats.value_or(LatencyStats{});
    }

    static void expect_several_sessions_at_once(const LatencyStats& stats) {
        EXPECT_GT(stats.sessions_max_open, 1u) << "one session: the run was not parallel";
        EXPECT_GT(stats.max_in_flight, 1u) << "several sessions, yet no two calls at once";
    }
};

TEST_F(ParallelSessionsTest, RestoreOverSessionsMatchesOneSessionAndEveryKeySigns) {
    const FaultedRun one = run_parallel(target_, "restore", {"--in", file_, "--json", "--jobs", "1"});
    ASSERT_EQ(one.result.exit_code, 0) << describe(one.result);
    EXPECT_EQ(stats().sessions_max_open, 1u);
    EXPECT_EQ(stats().max_in_flight, 1u);
    const std::vector<ObjectSummary> restored_by_one = difference(target_.objects(), before_);
    EXPECT_EQ(restored_by_one.size(), 3 * kKeys);
    remove_extra_objects(target_, before_);

    const FaultedRun many = run_parallel(target_, "restore", {"--in", file_, "--json"});
    ASSERT_EQ(many.result.exit_code, 0) << describe(many.result);
    expect_several_sessions_at_once(stats());
    EXPECT_LE(stats().sessions_max_open, kKeys) << "more sessions than the token allows";
    EXPECT_EQ(difference(target_.objects(), before_), restored_by_one);
    EXPECT_EQ(without_times(stdout_json(many.result)), without_times(stdout_json(one.result)));
    EXPECT_EQ(many.result.err, one.result.err);
    expect_every_key_signs(target_, file_, kTestPassword, stdout_json(many.result), kKeys);
}

// The K-th object-writing call fails while other sessions write: every object any session
// created is destroyed, and the error names the call.
TEST_F(ParallelSessionsTest, AFailureInOneSessionRollsBackWhatEverySessionCreated) {
    for (unsigned long nth : {2ul, 9ul, 17ul, 3 * kKeys}) {
        SCOPED_TRACE("C_CreateObject #" + std::to_string(nth));
        FaultSpec spec;
        spec.function = "C_CreateObject";
        spec.nth = nth;
        const FaultedRun run = run_parallel(target_, "restore", {"--in", file_}, spec);
        ASSERT_EQ(run.injected().size(), 1u) << describe(run.result);
        expect_one_error_naming(run.result, run.injected()[0]);
        EXPECT_EQ(run.result.exit_code, 5) << describe(run.result);
        EXPECT_EQ(target_.objects(), before_) << describe(run.result);
        expect_several_sessions_at_once(stats());
        remove_extra_objects(target_, before_);
    }
}

TEST_F(ParallelSessionsTest, AnInterruptStopsEverySessionAndRollsBack) {
    FaultSpec spec;
    spec.function = "C_CreateObject";
    spec.nth = 10;
    spec.signal = "SIGINT";
    const FaultedRun run = run_parallel(target_, "restore", {"--in", file_}, spec);
    EXPECT_EQ(run.result.exit_code, 130) << describe(run.result);
    const auto lines = run.result.err_lines();
    ASSERT_EQ(lines.size(), 1u) << describe(run.result);
    EXPECT_EQ(lines[0].rfind("p11vault: error: interrupted by SIGINT during the restore; the token was left as it was", 0),
              0u)
        << lines[0];
    EXPECT_EQ(target_.objects(), before_);
    expect_several_sessions_at_once(stats());
}

// The file of a parallel backup is that of one session: the same bags in the same order
// (openssl prints them with the keys in clear), and the same --json.
TEST_F(ParallelSessionsTest, BackupOverSessionsWritesTheFileOfOneSession) {
    const std::string by_one = source_.dir() + "/by-one.p12", by_many = source_.dir() + "/by-many.p12";
    const std::vector<std::string> common = {"--all", "--iter", kFastIterations, "--json"};
    auto args = [&](const std::string& out, std::vector<std::string> more) {
        std::vector<std::string> all = {"--out", out};
        all.insert(all.end(), common.begin(), common.end());
        all.insert(all.end(), more.begin(), more.end());
        return all;
    };
    const FaultedRun one = run_parallel(source_, "backup", args(by_one, {"--jobs", "1"}));
    ASSERT_EQ(one.result.exit_code, 0) << describe(one.result);
    EXPECT_EQ(stats().sessions_max_open, 1u);
    const FaultedRun many = run_parallel(source_, "backup", args(by_many, {}));
    ASSERT_EQ(many.result.exit_code, 0) << describe(many.result);
    expect_several_sessions_at_once(stats());

    const RunResult info_one = openssl_pkcs12_info(by_one), info_many = openssl_pkcs12_info(by_many);
    ASSERT_EQ(info_one.exit_code, 0) << info_one.err;
    EXPECT_EQ(private_keys_in_pem(info_one.out).size(), kKeys);
    EXPECT_EQ(info_many.out, info_one.out);
    nlohmann::json json_one = without_times(stdout_json(one.result)),
                   json_many = without_times(stdout_json(many.result));
    // The files differ in their random salts and IVs, so in their hashes; and in their names.
    for (const char* differs : {"file", "file_sha256"}) {
        ASSERT_TRUE(json_one.contains(differs)) << json_one.dump(2);
        json_one.erase(differs);
        json_many.erase(differs);
    }
    EXPECT_EQ(json_many, json_one);
}

// The fault module's token allows one session unless told otherwise: --jobs 4 gets one,
// and says so.
TEST_F(ParallelSessionsTest, ATokenThatAllowsOneSessionGetsOneAndAWarning) {
    FaultSpec spec;
    spec.rv = "CKR_OK";
    spec.latency_stats = stats_path();
    const FaultedRun run = run_faulted(target_, log_path(), "restore", {"--in", file_, "--jobs", "4"}, spec);
    ASSERT_EQ(run.result.exit_code, 0) << describe(run.result);
    EXPECT_NE(run.result.err.find("p11vault: warning: --jobs 4: the token allows this run 1 read-write session; "
                                  "one was used"),
              std::string::npos)
        << run.result.err;
    EXPECT_EQ(stats().sessions_max_open, 1u);
    EXPECT_EQ(difference(target_.objects(), before_).size(), 3 * kKeys);
}

// Source and target through one latency module (the tokens share SoftHSM's configuration).
TEST_F(ParallelSessionsTest, MigrateOverSessionsMovesEveryKey) {
    RunOptions options;
    add_env_entries(options, target_.env_for_child());
    options.env["P11VAULT_MODULE"] = P11VAULT_LATENCY_MODULE_PATH;
    options.env["P11VAULT_LATENCY_MODULE"] = softhsm_module_path;
    options.env["P11VAULT_LATENCY_MS"] = "1";
    options.env["P11VAULT_LATENCY_STATS"] = stats_path();
    std::filesystem::remove(stats_path());
    const RunResult run = run_p11vault({"migrate", "--from-token-label", source_.label(), "--from-pin",
                                        "file:" + source_.write_pin_file(), "--to-token-label", target_.label(),
                                        "--to-pin", "file:" + target_.write_pin_file(), "--all", "--json"},
                                       options);
    ASSERT_EQ(run.exit_code, 0) << describe(run);
    expect_several_sessions_at_once(stats());
    EXPECT_EQ(count_class(difference(target_.objects(), before_), CKO_PRIVATE_KEY), kKeys);
}

// The drill restores into a throw-away SoftHSM token: its report is the same whatever
// --jobs, and --jobs without --drill is a usage error.
TEST_F(ParallelSessionsTest, TheDrillsReportIsTheSameWithAndWithoutSessions) {
    auto drill = [&](const std::vector<std::string>& more) {
        std::vector<std::string> args = {"verify", "--in", file_, "--password", std::string("env:") + kPasswordVariable,
                                         "--drill", "--json"};
        args.insert(args.end(), more.begin(), more.end());
        RunOptions options;
        options.env[kPasswordVariable] = kTestPassword;
        return run_p11vault(args, options);
    };
    const RunResult one = drill({"--jobs", "1"}), four = drill({"--jobs", "4"});
    ASSERT_EQ(one.exit_code, 0) << describe(one);
    ASSERT_EQ(four.exit_code, 0) << describe(four);
    EXPECT_EQ(without_times(stdout_json(four)), without_times(stdout_json(one)));

    RunOptions options;
    options.env[kPasswordVariable] = kTestPassword;
    const RunResult without_drill = run_p11vault(
        {"verify", "--in", file_, "--password", std::string("env:") + kPasswordVariable, "--jobs", "4"}, options);
    EXPECT_EQ(without_drill.exit_code, 2) << describe(without_drill);
    EXPECT_NE(without_drill.err.find("--drill"), std::string::npos) << without_drill.err;
}

}  // namespace
}  // namespace p11vault::testing
