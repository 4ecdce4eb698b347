// SPDX-License-Identifier: Apache-2.0
// The latency module (tests/latency/latency_module.cpp), which plays a network HSM for
// the tests and scripts/bench: p11vault runs through it and its stats count every call;
// its session limit is reported by C_GetTokenInfo, enforced by C_OpenSession, named by
// p11vault when a run cannot have one session and kept by a run that asks for more; with
// NO_THREADS it refuses a C_Initialize that asks for locking, and p11vault then calls it
// from one thread; p11vault's default jobs make calls at once, --jobs 1 does not; calls
// made at once sleep at once; a bad setting fails C_GetFunctionList.
//
// The in-process tests load the module over the SoftHSM that the test's own TestToken has
// initialized, so its C_Initialize answers CKR_CRYPTOKI_ALREADY_INITIALIZED when a call
// reaches SoftHSM, and they never call C_Finalize through it (that would finalize SoftHSM
// under the TestToken).
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/fault_fixture.hpp"
#include "tests/support/test_ca.hpp"
#include "tests/support/test_keys.hpp"

#ifndef P11VAULT_LATENCY_MODULE_PATH
#error "P11VAULT_LATENCY_MODULE_PATH must name the latency module (tests/latency/CMakeLists.txt)"
#endif

namespace p11vault::testing {
namespace {

constexpr const char* kLatencyModule = P11VAULT_LATENCY_MODULE_PATH;

using Env = std::map<std::string, std::string>;

const std::vector<std::string> kModuleVariables = {
    "P11VAULT_LATENCY_MODULE",       "P11VAULT_LATENCY_ENTRY",      "P11VAULT_LATENCY_MS",
    "P11VAULT_LATENCY_MAX_SESSIONS", "P11VAULT_LATENCY_NO_THREADS", "P11VAULT_LATENCY_STATS",
    "P11VAULT_FAULT_AT",             "P11VAULT_FAULT_FUNCTION",     "P11VAULT_FAULT_NTH",
    "P11VAULT_FAULT_RV",             "P11VAULT_FAULT_LOG",          "P11VAULT_FAULT_MODULE",
    "P11VAULT_FAULT_SESSIONS",       "P11VAULT_DEBUG",              "P11VAULT_MODULE"};

class LatencyModuleTest : public ::testing::Test {
protected:
    LatencyModuleTest() : token_(Backend::softhsm, "latency") {
        auto session = token_.open_session();
        certify(*session, generate_ec(*session, "P-256", {0x41}, "latency-ec-1"));
        certify(*session, generate_ec(*session, "P-256", {0x42}, "latency-ec-2"));
    }

    // `p11vault backup --all` of the token through the latency module, set up by `env`
    // (over SoftHSM unless env names another module).
    RunResult backup_through(const Env& env, const std::vector<std::string>& extra = {}) const {
        RunOptions options;
        add_env_entries(options, token_.env_for_child());
        options.env[kPasswordVariable] = kTestPassword;
        options.unset_env = kModuleVariables;
        options.env["P11VAULT_LATENCY_STATS"] = stats_path();
        for (const auto& [name, value] : env) options.env[name] = value;
        std::filesystem::remove(stats_path());
        std::vector<std::string> args = {"backup", "--module", kLatencyModule, "--token-label", token_.label(),
                                         "--pin", "file:" + token_.write_pin_file(), "--password",
                                         std::string("env:") + kPasswordVariable, "--out", out_path(), "--all",
                                         "--iter", kFastIterations, "--force"};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_p11vault(args, options);
    }

    // backup_through, which must succeed, and the module's stats of it (nullopt, with a
    // failed expectation, when the run failed or left no stats). The run: last_.
    std::optional<LatencyStats> backed_up(const Env& env, const std::vector<std::string>& extra = {}) {
        last_ = backup_through(env, extra);
        EXPECT_EQ(last_.exit_code, 0) << describe(last_);
        if (last_.exit_code != 0) return std::nullopt;
        std::optional<LatencyStats> stats = read_latency_stats(stats_path());
        EXPECT_TRUE(stats) << "no stats line in " << stats_path();
        return stats;
    }

    std::string out_path() const { return token_.dir() + "/latency.p12"; }
    std::string stats_path() const { return token_.dir() + "/latency.stats"; }

    TestToken token_;
    RunResult last_;
};

TEST_F(LatencyModuleTest, P11vaultRunsThroughItAndItsStatsCountEveryCall) {
    // latency -> fault module (which logs every call but C_GetFunctionList) -> SoftHSM:
    // the calls the stats count are the lines of the fault module's log.
    const std::string log = token_.dir() + "/calls.log";
    const std::optional<LatencyStats> stats = backed_up({{"P11VAULT_LATENCY_MS", "0.5"},
                                                  {"P11VAULT_LATENCY_MODULE", kFaultModule},
                                                  {"P11VAULT_FAULT_MODULE", softhsm_module_path},
                                                  {"P11VAULT_FAULT_LOG", log}});
    ASSERT_TRUE(stats);
    EXPECT_TRUE(file_exists(out_path()));
    const std::vector<Call> calls = read_log(log);
    ASSERT_GT(calls.size(), 10u) << "the call log is implausibly short";
    EXPECT_EQ(stats->calls, calls.size()) << "the stats must count every call the module forwarded";
    EXPECT_GE(stats->max_in_flight, 1u);
    const FaultedRun logged{last_, calls};
    EXPECT_GE(stats->sessions_max_open, 1u);
    EXPECT_LE(stats->sessions_max_open, logged.calls_of("C_OpenSession"));
}

TEST_F(LatencyModuleTest, ASessionLimitOfZeroFailsTheRunNamingCkrSessionCount) {
    const RunResult run = backup_through({{"P11VAULT_LATENCY_MAX_SESSIONS", "0"}});
    EXPECT_EQ(run.exit_code, 5) << describe(run);
    const auto lines = run.err_lines();
    ASSERT_EQ(lines.size(), 1u) << describe(run);
    EXPECT_EQ(lines[0].rfind("p11vault: error: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find("C_OpenSession"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("CKR_SESSION_COUNT"), std::string::npos) << lines[0];
    EXPECT_FALSE(file_exists(out_path()));
    const std::optional<LatencyStats> stats = read_latency_stats(stats_path());
    ASSERT_TRUE(stats);
    EXPECT_EQ(stats->sessions_max_open, 0u);
}

TEST_F(LatencyModuleTest, ASessionLimitOfOneIsEnoughForABackup) {
    const std::optional<LatencyStats> stats = backed_up({{"P11VAULT_LATENCY_MAX_SESSIONS", "1"}});
    ASSERT_TRUE(stats);
    EXPECT_EQ(stats->sessions_max_open, 1u);
}

// p11vault's parallel sessions (--jobs) seen from the module: the sessions it held at once
// and whether calls overlapped. Counts, not times.
TEST_F(LatencyModuleTest, DefaultJobsMakeCallsAtOnceAndJobsOneDoesNot) {
    const std::optional<LatencyStats> many = backed_up({{"P11VAULT_LATENCY_MS", "2"}});
    ASSERT_TRUE(many);
    EXPECT_GT(many->sessions_max_open, 1u);
    EXPECT_GT(many->max_in_flight, 1u) << "several sessions, yet no two calls at once";
    const std::optional<LatencyStats> one = backed_up({{"P11VAULT_LATENCY_MS", "2"}}, {"--jobs", "1"});
    ASSERT_TRUE(one);
    EXPECT_EQ(one->sessions_max_open, 1u);
    EXPECT_EQ(one->max_in_flight, 1u);
}

TEST_F(LatencyModuleTest, AModuleThatCannotLockIsCalledFromOneThread) {
    const std::optional<LatencyStats> stats =
        backed_up({{"P11VAULT_LATENCY_NO_THREADS", "1"}, {"P11VAULT_LATENCY_MS", "1"}}, {"--jobs", "4"});
    ASSERT_TRUE(stats);
    EXPECT_NE(last_.err.find("--jobs 4: the module cannot be called from several threads (C_Initialize: "
                             "CKR_CANT_LOCK); one session was used"),
              std::string::npos)
        << last_.err;
    EXPECT_EQ(stats->sessions_max_open, 1u);
    EXPECT_EQ(stats->max_in_flight, 1u);
}

// A token that allows fewer sessions than asked for: the run keeps to them.
TEST_F(LatencyModuleTest, ARunKeepsToTheTokensSessionLimit) {
    const std::optional<LatencyStats> stats = backed_up({{"P11VAULT_LATENCY_MAX_SESSIONS", "2"}}, {"--jobs", "4"});
    ASSERT_TRUE(stats);
    EXPECT_EQ(stats->sessions_max_open, 2u);
}

TEST_F(LatencyModuleTest, ABadSettingFailsC_GetFunctionListWithOneLine) {
    const Env bad[] = {
        {{"P11VAULT_LATENCY_MS", "five"}},        {{"P11VAULT_LATENCY_MS", "-1"}},
        {{"P11VAULT_LATENCY_MS", "1.2.3"}},       {{"P11VAULT_LATENCY_MS", ".5"}},
        {{"P11VAULT_LATENCY_MS", "5."}},          {{"P11VAULT_LATENCY_MS", "60001"}},
        {{"P11VAULT_LATENCY_MS", "1e3"}},         {{"P11VAULT_LATENCY_MAX_SESSIONS", "1.5"}},
        {{"P11VAULT_LATENCY_MAX_SESSIONS", "x"}}, {{"P11VAULT_LATENCY_NO_THREADS", "yes"}}};
    for (const auto& env : bad) {
        const auto& [variable, value] = *env.begin();
        SCOPED_TRACE(variable + "=" + value);
        RunOptions options;
        add_env_entries(options, token_.env_for_child());
        options.unset_env = kModuleVariables;
        options.env[variable] = value;
        const RunResult run = run_p11vault({"list", "--module", kLatencyModule}, options);
        EXPECT_EQ(run.exit_code, 5) << describe(run);
        const auto lines = run.err_lines();
        ASSERT_EQ(lines.size(), 2u) << describe(run);
        EXPECT_EQ(lines[0], "p11vault latency module: " + variable + " must be " +
                                (variable == "P11VAULT_LATENCY_MS" ? "a number of milliseconds from 0 to 60000 "
                                                                     "(digits, at most one decimal point)"
                                 : variable == "P11VAULT_LATENCY_NO_THREADS" ? "1"
                                                                             : "a whole number up to 1000000000") +
                                ", not " + value);
        EXPECT_NE(lines[1].find("C_GetFunctionList: CKR_ARGUMENTS_BAD"), std::string::npos) << lines[1];
    }
    // Good forms of the same settings.
    for (const char* ms : {"0", "1", "0.25", "12.5"}) {
        RunOptions options;
        add_env_entries(options, token_.env_for_child());
        options.unset_env = kModuleVariables;
        options.env["P11VAULT_LATENCY_MS"] = ms;
        options.env["P11VAULT_LATENCY_MAX_SESSIONS"] = "7";
        const RunResult run = run_p11vault({"list", "--module", kLatencyModule, "--token-label", token_.label(),
                                            "--pin", "file:" + token_.write_pin_file()},
                                           options);
        EXPECT_EQ(run.exit_code, 0) << ms << ": " << describe(run);
        EXPECT_NE(run.out.find("latency-ec-1"), std::string::npos) << run.out;
    }
}

// ---- In process ---------------------------------------------------------------------------

// The latency module loaded into this process with `env` set while it reads its settings
// (its first C_GetFunctionList), and unloaded again, so the next load reads them afresh.
class InProcessModule {
public:
    explicit InProcessModule(const Env& env) {
        for (const auto& name : kModuleVariables) ::unsetenv(name.c_str());
        for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
        handle_ = dlopen(kLatencyModule, RTLD_NOW | RTLD_LOCAL);
        if (handle_ != nullptr) {
            auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle_, "C_GetFunctionList"));
            if (get != nullptr && get(&functions_) != CKR_OK) functions_ = nullptr;
        }
        for (const auto& [name, value] : env) ::unsetenv(name.c_str());
    }
    ~InProcessModule() {
        if (handle_ != nullptr) dlclose(handle_);
        EXPECT_EQ(dlopen(kLatencyModule, RTLD_NOW | RTLD_NOLOAD), nullptr)
            << "the latency module stays loaded after dlclose: a later load would not read its settings again";
    }
    InProcessModule(const InProcessModule&) = delete;
    InProcessModule& operator=(const InProcessModule&) = delete;

    // Null (and a failed expectation) when the module did not load.
    CK_FUNCTION_LIST* operator->() const {
        EXPECT_NE(functions_, nullptr) << kLatencyModule << " did not load";
        return functions_;
    }

private:
    void* handle_ = nullptr;
    CK_FUNCTION_LIST* functions_ = nullptr;
};

CK_RV create_mutex(CK_VOID_PTR_PTR) { return CKR_OK; }
CK_RV destroy_mutex(CK_VOID_PTR) { return CKR_OK; }
CK_RV lock_mutex(CK_VOID_PTR) { return CKR_OK; }
CK_RV unlock_mutex(CK_VOID_PTR) { return CKR_OK; }

TEST_F(LatencyModuleTest, NoThreadsRefusesAnInitializeThatAsksForLocking) {
    CK_C_INITIALIZE_ARGS os_locking{};
    os_locking.flags = CKF_OS_LOCKING_OK;
    CK_C_INITIALIZE_ARGS callbacks{};
    callbacks.CreateMutex = create_mutex;
    callbacks.DestroyMutex = destroy_mutex;
    callbacks.LockMutex = lock_mutex;
    callbacks.UnlockMutex = unlock_mutex;
    CK_C_INITIALIZE_ARGS no_locking{};
    {
        InProcessModule module(Env{{"P11VAULT_LATENCY_NO_THREADS", "1"}});
        ASSERT_NE(module.operator->(), nullptr);
        EXPECT_EQ(module->C_Initialize(&os_locking), CKR_CANT_LOCK);
        EXPECT_EQ(module->C_Initialize(&callbacks), CKR_CANT_LOCK);
        // Forwarded: SoftHSM answers (it is initialized already, by this test's token).
        EXPECT_EQ(module->C_Initialize(nullptr), CKR_CRYPTOKI_ALREADY_INITIALIZED);
        EXPECT_EQ(module->C_Initialize(&no_locking), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    }
    InProcessModule module(Env{});
    ASSERT_NE(module.operator->(), nullptr);
    EXPECT_EQ(module->C_Initialize(&os_locking), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    EXPECT_EQ(module->C_Initialize(&callbacks), CKR_CRYPTOKI_ALREADY_INITIALIZED);
}

TEST_F(LatencyModuleTest, TheSessionLimitIsReportedAndKept) {
    InProcessModule module(Env{{"P11VAULT_LATENCY_MAX_SESSIONS", "2"}});
    ASSERT_NE(module.operator->(), nullptr);
    const CK_SLOT_ID slot = token_.slot();
    const auto info = [&] {
        CK_TOKEN_INFO info{};
        EXPECT_EQ(module->C_GetTokenInfo(slot, &info), CKR_OK);
        return info;
    };
    EXPECT_EQ(info().ulMaxSessionCount, 2u);
    EXPECT_EQ(info().ulMaxRwSessionCount, 2u);
    EXPECT_EQ(info().ulSessionCount, 0u);
    const auto open = [&](CK_SESSION_HANDLE& session, CK_FLAGS flags = CKF_SERIAL_SESSION) {
        return module->C_OpenSession(slot, flags, nullptr, nullptr, &session);
    };
    CK_SESSION_HANDLE first = 0, second = 0, third = 0;
    ASSERT_EQ(open(first), CKR_OK);
    ASSERT_EQ(open(second, CKF_SERIAL_SESSION | CKF_RW_SESSION), CKR_OK);
    EXPECT_EQ(info().ulSessionCount, 2u);
    EXPECT_EQ(info().ulRwSessionCount, 1u);
    EXPECT_EQ(open(third), CKR_SESSION_COUNT);
    EXPECT_EQ(module->C_CloseSession(second), CKR_OK);
    EXPECT_EQ(info().ulSessionCount, 1u);
    EXPECT_EQ(info().ulRwSessionCount, 0u);
    ASSERT_EQ(open(third), CKR_OK) << "a closed session frees its place";
    EXPECT_EQ(open(second), CKR_SESSION_COUNT);
    EXPECT_EQ(module->C_CloseAllSessions(slot), CKR_OK);
    EXPECT_EQ(info().ulSessionCount, 0u);
    ASSERT_EQ(open(first), CKR_OK) << "C_CloseAllSessions frees every place of the slot";
    ASSERT_EQ(open(second), CKR_OK);
    EXPECT_EQ(open(third), CKR_SESSION_COUNT);
    EXPECT_EQ(module->C_CloseAllSessions(slot), CKR_OK);
}

// The sleep holds no lock: calls made at once take about one latency, not one each. The
// bound is one-sided: calls that slept one after another could not finish in less than
// kThreads x kLatency, however fast the machine.
TEST_F(LatencyModuleTest, CallsMadeAtOnceSleepAtOnce) {
    constexpr int kThreads = 8;
    constexpr std::chrono::milliseconds kLatency{300};
    InProcessModule module(Env{{"P11VAULT_LATENCY_MS", std::to_string(kLatency.count())}});
    CK_FUNCTION_LIST* functions = module.operator->();
    ASSERT_NE(functions, nullptr);
    std::vector<CK_RV> results(kThreads, CKR_GENERAL_ERROR);
    const auto start = std::chrono::steady_clock::now();
    {
        std::vector<std::jthread> threads;
        for (int i = 0; i < kThreads; ++i) {
            threads.emplace_back([functions, &results, i] {
                CK_INFO info{};
                results[static_cast<std::size_t>(i)] = functions->C_GetInfo(&info);
            });
        }
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    for (CK_RV rv : results) EXPECT_EQ(rv, CKR_OK);
    EXPECT_GE(elapsed, kLatency) << "the module did not sleep";
    EXPECT_LT(elapsed, kThreads * kLatency) << "the calls slept one after another";
}

}  // namespace
}  // namespace p11vault::testing
