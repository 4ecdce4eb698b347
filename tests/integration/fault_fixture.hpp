// SPDX-License-Identifier: Apache-2.0
// The fixture of the fault-injection tests (fault_test.cpp: restore; backup_fault_test.cpp:
// backup): a source token with keys, a target token, runs of p11vault through
// tests/fault/fault_module.cpp with one call failed, the module's call log, and checks
// that a failed run names the failed call and leaves the token as it was.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "pkcs11/attributes.hpp"
#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

#ifndef P11VAULT_FAULT_MODULE_PATH
#error "P11VAULT_FAULT_MODULE_PATH must name the fault module (tests/fault/CMakeLists.txt)"
#endif

namespace p11vault::testing {

constexpr const char* kFaultModule = P11VAULT_FAULT_MODULE_PATH;

// One line of the fault module's call log.
struct Call {
    unsigned long number = 0;  // counted number; 0 for uncounted calls
    std::string function;
    std::string rv;
    bool injected = false;
};

struct FaultSpec {
    unsigned long at = 0;       // P11VAULT_FAULT_AT (0: off)
    std::string function;       // P11VAULT_FAULT_FUNCTION
    unsigned long nth = 0;      // P11VAULT_FAULT_NTH
    std::string rv = "CKR_DEVICE_ERROR";
    bool unprotect = false;     // P11VAULT_FAULT_UNPROTECT=1 (play openCryptoki's C_UnwrapKey)
    std::string signal;         // P11VAULT_FAULT_SIGNAL: signal instead of failing
    unsigned long delay_ms = 0; // P11VAULT_FAULT_DELAY_MS: delay instead of failing
    unsigned timeout_seconds = 0;  // kill -9 the run after this long (0: the default timeout)
    unsigned sessions = 0;      // P11VAULT_FAULT_SESSIONS: the token's session limit (0: the module's 1)
    // When set: the run goes through the latency module (tests/latency) in front of the
    // fault module, 1 ms per call, which writes its stats (calls, calls at once, sessions
    // open at once) here: proof that a parallel run used several sessions.
    std::string latency_stats;
};

inline std::string describe(const FaultSpec& spec) {
    std::ostringstream out;
    if (spec.at != 0) out << "call " << spec.at << " ";
    if (!spec.function.empty()) out << spec.function << (spec.nth ? " #" + std::to_string(spec.nth) : "") << " ";
    out << spec.rv;
    return out.str();
}

struct FaultedRun {
    RunResult result;
    std::vector<Call> calls;
    // The calls that were made to fail.
    std::vector<Call> injected() const {
        std::vector<Call> out;
        for (const auto& call : calls)
            if (call.injected) out.push_back(call);
        return out;
    }
    unsigned long counted_calls() const {
        unsigned long n = 0;
        for (const auto& call : calls) n = std::max(n, call.number);
        return n;
    }
    std::size_t calls_of(const std::string& function) const {
        return static_cast<std::size_t>(
            std::count_if(calls.begin(), calls.end(), [&](const Call& c) { return c.function == function; }));
    }
};

inline std::vector<Call> read_log(const std::string& path) {
    std::vector<Call> calls;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        std::istringstream fields(line);
        std::string number, marker;
        Call call;
        fields >> number >> call.function >> call.rv >> marker;
        call.number = number == "-" ? 0 : std::stoul(number);
        call.injected = marker == "injected";
        calls.push_back(std::move(call));
    }
    return calls;
}

// The line the latency module (tests/latency) writes at C_Finalize.
struct LatencyStats {
    unsigned long calls = 0;
    unsigned long max_in_flight = 0;
    unsigned long sessions_max_open = 0;
};

inline std::optional<LatencyStats> read_latency_stats(const std::string& path) {
    if (!file_exists(path)) return std::nullopt;
    const std::string text = read_text(path);
    LatencyStats stats;
    int end = 0;
    if (std::sscanf(text.c_str(), "calls=%lu max_in_flight=%lu sessions_max_open=%lu\n%n", &stats.calls,
                    &stats.max_in_flight, &stats.sessions_max_open, &end) != 3 ||
        static_cast<std::size_t>(end) != text.size() || text.back() != '\n')
        return std::nullopt;
    return stats;
}

// Runs `p11vault SUBCOMMAND --module <fault module> --token-label L --pin file:...
// --password env:... ARGS...` with the fault module set up as `spec` says.
inline FaultedRun run_faulted(const TestToken& token, const std::string& log_path, const std::string& subcommand,
                       const std::vector<std::string>& args, const std::optional<FaultSpec>& spec) {
    std::filesystem::remove(log_path);
    RunOptions options;
    options.env["P11VAULT_FAULT_MODULE"] = softhsm_module_path;
    options.env["P11VAULT_FAULT_LOG"] = log_path;
    options.unset_env = {"P11VAULT_FAULT_AT", "P11VAULT_FAULT_FUNCTION", "P11VAULT_FAULT_NTH", "P11VAULT_FAULT_RV",
                         "P11VAULT_FAULT_UNPROTECT", "P11VAULT_FAULT_SIGNAL", "P11VAULT_FAULT_DELAY_MS", "P11VAULT_DEBUG",
                         "P11VAULT_FAULT_SESSIONS", "P11VAULT_LATENCY_MODULE", "P11VAULT_LATENCY_ENTRY",
                         "P11VAULT_LATENCY_MS", "P11VAULT_LATENCY_MAX_SESSIONS", "P11VAULT_LATENCY_NO_THREADS",
                         "P11VAULT_LATENCY_STATS"};
    std::string module = kFaultModule;
    if (spec) {
        if (spec->at != 0) options.env["P11VAULT_FAULT_AT"] = std::to_string(spec->at);
        if (!spec->function.empty()) options.env["P11VAULT_FAULT_FUNCTION"] = spec->function;
        if (spec->nth != 0) options.env["P11VAULT_FAULT_NTH"] = std::to_string(spec->nth);
        options.env["P11VAULT_FAULT_RV"] = spec->rv;
        if (spec->unprotect) options.env["P11VAULT_FAULT_UNPROTECT"] = "1";
        if (!spec->signal.empty()) options.env["P11VAULT_FAULT_SIGNAL"] = spec->signal;
        if (spec->delay_ms != 0) options.env["P11VAULT_FAULT_DELAY_MS"] = std::to_string(spec->delay_ms);
        if (spec->timeout_seconds != 0) options.timeout = std::chrono::seconds(spec->timeout_seconds);
        if (spec->sessions != 0) options.env["P11VAULT_FAULT_SESSIONS"] = std::to_string(spec->sessions);
        if (!spec->latency_stats.empty()) {
            std::filesystem::remove(spec->latency_stats);
            module = P11VAULT_LATENCY_MODULE_PATH;
            options.env["P11VAULT_LATENCY_MODULE"] = kFaultModule;
            options.env["P11VAULT_LATENCY_MS"] = "1";
            options.env["P11VAULT_LATENCY_STATS"] = spec->latency_stats;
        }
    }
    FaultedRun run;
    run.result = run_with_token_args(token, subcommand, {"--module", module, "--token-label", token.label()},
                                     args, kTestPassword, options);
    run.calls = read_log(log_path);
    return run;
}

inline std::string describe(const RunResult& result) {
    return "exit " + std::to_string(result.exit_code) + "\n--- stderr:\n" + result.err + "--- stdout:\n" + result.out;
}

// The contract's failure shape: exit in 1..127, and stderr exactly one line, the error,
// naming the failed call and its return value.
inline void expect_one_error_naming(const RunResult& result, const Call& fault) {
    EXPECT_NE(result.exit_code, 0);
    EXPECT_LT(result.exit_code, 128) << "killed by a signal";
    const auto lines = result.err_lines();
    ASSERT_EQ(lines.size(), 1u) << describe(result);
    EXPECT_EQ(lines[0].rfind("p11vault: error: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(fault.function), std::string::npos) << "the message does not name " << fault.function
                                                                 << ": " << lines[0];
    EXPECT_NE(lines[0].find(fault.rv), std::string::npos) << lines[0];
}

// Objects on `token` beyond `before` (as a multiset), destroyed; returns what they were.
inline std::vector<ObjectSummary> remove_extra_objects(const TestToken& token, const std::vector<ObjectSummary>& before) {
    std::multiset<ObjectSummary> expected(before.begin(), before.end());
    std::vector<ObjectSummary> extra;
    auto session = token.open_session(true, true);
    pkcs11::AttributeTemplate everything;
    static const CK_ATTRIBUTE_TYPE wanted[] = {CKA_CLASS, CKA_ID, CKA_LABEL};
    for (CK_OBJECT_HANDLE object : session->find(everything)) {
        auto values = session->get_attributes(object, wanted);
        ObjectSummary summary;
        summary.object_class = values.ulong(CKA_CLASS).value_or(CKO_DATA);
        if (const pkcs11::Bytes* id = values.bytes(CKA_ID)) summary.id = *id;
        summary.label = values.text(CKA_LABEL).value_or("");
        if (auto found = expected.find(summary); found != expected.end()) {
            expected.erase(found);
            continue;
        }
        session->destroy_object(object);
        extra.push_back(std::move(summary));
    }
    std::sort(extra.begin(), extra.end());
    return extra;
}

inline std::vector<ObjectSummary> difference(const std::vector<ObjectSummary>& after, const std::vector<ObjectSummary>& before) {
    std::vector<ObjectSummary> out;
    std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(out));
    return out;
}

inline pkcs11::Bytes unhex(const std::string& text) {
    pkcs11::Bytes out;
    for (std::size_t i = 0; i + 1 < text.size(); i += 2) out.push_back(static_cast<std::uint8_t>(std::stoul(text.substr(i, 2), nullptr, 16)));
    return out;
}

// The objects a "the rollback failed too, these objects are still on the token: ..."
// message names ("private key id=11 label="x" (C_DestroyObject: ...), ..."), as summaries.
// (No std::regex: GCC 12's -Wmaybe-uninitialized trips over it in optimized builds.)
inline std::vector<ObjectSummary> named_leftovers(const std::string& message) {
    std::vector<ObjectSummary> out;
    const auto at = message.find("still on the token:");
    if (at == std::string::npos) return out;
    const std::string tail = message.substr(at);
    static const std::pair<const char*, CK_OBJECT_CLASS> kinds[] = {
        {"private key id=", CKO_PRIVATE_KEY}, {"public key id=", CKO_PUBLIC_KEY}, {"certificate id=", CKO_CERTIFICATE}};
    for (const auto& [marker, object_class] : kinds) {
        for (std::size_t pos = tail.find(marker); pos != std::string::npos; pos = tail.find(marker, pos + 1)) {
            const std::size_t id_at = pos + std::string(marker).size();
            const std::size_t id_end = tail.find(' ', id_at);
            const std::size_t label_at = tail.find("label=\"", id_at);
            if (id_end == std::string::npos || label_at != id_end + 1) continue;
            const std::size_t label_end = tail.find('"', label_at + 7);
            if (label_end == std::string::npos) continue;
            ObjectSummary summary;
            summary.object_class = object_class;
            const std::string id = tail.substr(id_at, id_end - id_at);
            if (id != "(none)") summary.id = unhex(id);
            summary.label = tail.substr(label_at + 7, label_end - label_at - 7);
            out.push_back(std::move(summary));
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

// The read-only queries the fault module does not count (fault_module.cpp): each is
// failed by name instead, at its first and at its last call.
inline const char* const kQueryFunctions[] = {"C_GetInfo",      "C_GetSlotList",      "C_GetSlotInfo",
                                       "C_GetTokenInfo", "C_GetMechanismList", "C_GetMechanismInfo"};

inline std::vector<FaultSpec> query_faults(const FaultedRun& baseline) {
    std::vector<FaultSpec> out;
    for (const char* function : kQueryFunctions) {
        const std::size_t calls = baseline.calls_of(function);
        for (std::size_t nth = 1; nth <= calls; nth = nth == calls ? calls + 1 : calls) {
            FaultSpec spec;
            spec.function = function;
            spec.nth = nth;
            out.push_back(spec);
        }
    }
    return out;
}

class FaultTest : public ::testing::Test {
protected:
    FaultTest() : source_(Backend::softhsm, "fault-source"), target_(Backend::softhsm, "fault-target") {}

    // Three keys with certificates on the source token, backed up by p11vault itself
    // (through SoftHSM directly) into `file_`; a bystander key on the target.
    void SetUpRestore() {
        {
            auto session = source_.open_session();
            certify(*session, generate_rsa(*session, 2048, {0x11}, "fault-rsa"));
            certify(*session, generate_ec(*session, "P-256", {0x12}, "fault-ec256"));
            certify(*session, generate_ec(*session, "P-384", {0x13}, "fault-ec384"));
        }
        file_ = source_.dir() + "/three-keys.p12";
        const RunResult made = backup(source_, file_, {"--all"});
        ASSERT_EQ(made.exit_code, 0) << describe(made);
        // Something on the target before every run, so "unchanged" is not just "empty".
        {
            auto session = target_.open_session();
            certify(*session, generate_ec(*session, "P-256", {0xbb}, "bystander"));
        }
        before_ = target_.objects();
        baseline_ = baseline_restore();
    }

    std::vector<std::string> restore_args() const { return {"--in", file_}; }
    std::string log_path() const { return source_.dir() + "/fault.log"; }

    // The baseline: one restore without a fault, which must restore everything; returns
    // its call log and takes the restored objects off the target again.
    FaultedRun baseline_restore() {
        FaultedRun run = run_faulted(target_, log_path(), "restore", restore_args(), std::nullopt);
        EXPECT_EQ(run.result.exit_code, 0) << describe(run.result);
        complete_ = difference(target_.objects(), before_);
        EXPECT_EQ(complete_.size(), 9u) << "3 private keys, 3 public keys, 3 certificates";
        remove_extra_objects(target_, before_);
        EXPECT_EQ(target_.objects(), before_);
        return run;
    }

    // One restore with `spec`: it fails with exit 5 and one error line naming the failed
    // call, and the target holds exactly what it held before. Exit 0 is accepted only
    // for a failed call that cannot matter (C_CloseSession at the end, C_DestroyObject of
    // an ephemeral session key), and then the restore must be complete. Returns whether
    // the run failed; leaves the target as before either way.
    bool check_restore(const FaultSpec& spec) {
        SCOPED_TRACE("fault: " + describe(spec));
        const FaultedRun run = run_faulted(target_, log_path(), "restore", restore_args(), spec);
        const auto injected = run.injected();
        EXPECT_EQ(injected.size(), 1u) << "the fault was not injected exactly once (the run made "
                                       << run.counted_calls() << " counted calls)\n"
                                       << describe(run.result);
        if (injected.size() != 1u) return false;
        const Call& fault = injected[0];
        const auto after = target_.objects();
        if (run.result.exit_code == 0) {
            static const std::set<std::string> tolerated = {"C_CloseSession", "C_DestroyObject"};
            EXPECT_TRUE(tolerated.count(fault.function) != 0)
                << "exit 0 although " << fault.function << " failed\n"
                << describe(run.result);
            EXPECT_EQ(difference(after, before_), complete_) << "exit 0 with an incomplete restore";
            for (const auto& line : run.result.err_lines())
                EXPECT_EQ(line.rfind("p11vault: warning: ", 0), 0u) << "unexpected stderr on success: " << line;
            remove_extra_objects(target_, before_);
            return false;
        }
        expect_one_error_naming(run.result, fault);
        EXPECT_EQ(run.result.exit_code, 5) << "a token failure is exit 5\n" << describe(run.result);
        EXPECT_EQ(after, before_) << fault.function << " left objects behind: " << describe(run.result);
        if (after != before_) remove_extra_objects(target_, before_);
        return true;
    }

    TestToken source_;
    TestToken target_;
    std::string file_;
    std::vector<ObjectSummary> before_;    // the target before every run
    std::vector<ObjectSummary> complete_;  // what a complete restore adds
    FaultedRun baseline_;
};

}  // namespace p11vault::testing
