// SPDX-License-Identifier: Apache-2.0
// The drill through the public API in-process, and the process environment (issue 21: a
// library must not setenv). SoftHSM2 reads SOFTHSM2_CONF only, so the drill asks the
// caller's DrillEnvironment to point it at the throw-away token; the library itself
// changes no variable, and refuses to run the drill in any SoftHSM2 directory but its own.
// No TestToken here: the drill needs SoftHSM2 not yet initialized in the process.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "p11vault/error.hpp"
#include "p11vault/events.hpp"
#include "p11vault/verify.hpp"

extern char** environ;

namespace p11vault::testing {
namespace {

namespace fs = std::filesystem;

// Every NAME=VALUE of the process environment.
std::multiset<std::string> environment() {
    std::multiset<std::string> entries;
    for (char** entry = environ; *entry != nullptr; ++entry) entries.insert(*entry);
    return entries;
}

std::vector<std::uint8_t> corpus_file(const std::string& name) {
    std::ifstream in(std::string(P11VAULT_CORPUS_DIR) + "/" + name, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class FixedPassword : public SecretProvider {
public:
    SecretBytes provide(const SecretRequest&) override {
        ++asked;
        return SecretBytes::from_text("password");
    }
    int asked = 0;
};

// What a program does (src/cli/verify.cpp does the same): set SOFTHSM2_CONF in enter(),
// put it back in leave(). Records the environment the library left it at each call.
class RecordingDrillEnvironment : public DrillEnvironment {
public:
    explicit RecordingDrillEnvironment(bool sets_variable = true) : sets_variable_(sets_variable) {}
    void enter(const std::string& config_path) override {
        ++entered;
        given_path = config_path;
        at_enter = environment();
        if (!sets_variable_) return;
        if (const char* current = std::getenv("SOFTHSM2_CONF")) previous_ = current;
        ::setenv("SOFTHSM2_CONF", config_path.c_str(), 1);
    }
    void leave() noexcept override {
        ++left;
        if (!sets_variable_) return;
        if (previous_) ::setenv("SOFTHSM2_CONF", previous_->c_str(), 1);
        else ::unsetenv("SOFTHSM2_CONF");
    }
    int entered = 0, left = 0;
    std::string given_path;
    std::multiset<std::string> at_enter;

private:
    bool sets_variable_;
    std::optional<std::string> previous_;
};

// The environment while the drill restores and signs (progress events name the keys).
class DrillProgress : public Events {
public:
    void progress(const ProgressEvent& event) override {
        if (event.phase == "drill" && !event.current.empty()) during_drill.push_back(environment());
    }
    std::vector<std::multiset<std::string>> during_drill;
};

VerifySpec drill_spec(DrillEnvironment* drill_environment) {
    VerifySpec spec;
    spec.file = corpus_file("openssl3-ec-p384.p12");
    spec.file_name = "openssl3-ec-p384.p12";
    spec.drill = true;
    spec.drill_environment = drill_environment;
    return spec;
}

// A SoftHSM2 home of the caller's own: an empty token directory and its configuration.
struct CallerSoftHsmHome {
    CallerSoftHsmHome() {
        std::string pattern = fs::temp_directory_path().string() + "/p11vault-caller-softhsm-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp");
        dir = pattern;
        fs::create_directory(dir + "/tokens");
        conf = dir + "/softhsm2.conf";
        std::ofstream(conf) << "directories.tokendir = " << dir << "/tokens\nobjectstore.backend = file\nlog.level = ERROR\n";
    }
    ~CallerSoftHsmHome() {
        std::error_code ignored;
        fs::remove_all(dir, ignored);
    }
    bool tokens_empty() const { return fs::is_empty(dir + "/tokens"); }
    std::string dir, conf;
};

TEST(DrillEnvironmentTest, TheLibraryChangesNoVariableTheCallerPointsSoftHsmAtTheDrill) {
    CallerSoftHsmHome caller;
    ::setenv("SOFTHSM2_CONF", caller.conf.c_str(), 1);
    const std::multiset<std::string> before = environment();
    RecordingDrillEnvironment drill_environment;
    FixedPassword secrets;
    DrillProgress events;

    const VerifyReport report = p11vault::verify(drill_spec(&drill_environment), secrets, events);

    ASSERT_TRUE(report.drilled);
    ASSERT_EQ(report.drill.size(), 1u);
    EXPECT_TRUE(report.drill[0].ok) << report.drill[0].detail;
    EXPECT_EQ(drill_environment.entered, 1);
    EXPECT_EQ(drill_environment.left, 1);
    // Until the caller set it, the library had changed nothing (it used to setenv here).
    EXPECT_EQ(drill_environment.at_enter, before);
    // While the drill signs: the caller's one change and nothing else.
    std::multiset<std::string> pointed = before;
    pointed.erase(pointed.find("SOFTHSM2_CONF=" + caller.conf));
    pointed.insert("SOFTHSM2_CONF=" + drill_environment.given_path);
    ASSERT_FALSE(events.during_drill.empty());
    for (const auto& seen : events.during_drill) EXPECT_EQ(seen, pointed);
    // Afterwards: the caller's environment as it was, the drill's home gone, and the
    // caller's SoftHSM2 directory untouched.
    EXPECT_EQ(environment(), before);
    EXPECT_STREQ(std::getenv("SOFTHSM2_CONF"), caller.conf.c_str());
    EXPECT_NE(drill_environment.given_path, caller.conf);
    EXPECT_FALSE(fs::exists(fs::path(drill_environment.given_path).parent_path())) << drill_environment.given_path;
    EXPECT_TRUE(caller.tokens_empty());
}

TEST(DrillEnvironmentTest, ADrillEnvironmentThatDoesNotSetTheVariableStopsTheDrillBeforeSoftHsmLoads) {
    CallerSoftHsmHome caller;
    ::setenv("SOFTHSM2_CONF", caller.conf.c_str(), 1);
    RecordingDrillEnvironment careless(/*sets_variable=*/false);
    FixedPassword secrets;
    Events events;
    try {
        p11vault::verify(drill_spec(&careless), secrets, events);
        FAIL() << "the drill ran in the caller's SoftHSM2 directory";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::usage) << e.what();
        EXPECT_NE(std::string(e.what()).find("did not point SOFTHSM2_CONF at the drill's configuration"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_EQ(careless.entered, 1);
    EXPECT_EQ(careless.left, 1);
    EXPECT_TRUE(caller.tokens_empty()) << "the drill made its token in the caller's SoftHSM2 directory";
    EXPECT_STREQ(std::getenv("SOFTHSM2_CONF"), caller.conf.c_str());
    EXPECT_FALSE(fs::exists(fs::path(careless.given_path).parent_path()));
}

TEST(DrillEnvironmentTest, ADrillWithoutADrillEnvironmentIsAUsageErrorAndAsksForNothing) {
    FixedPassword secrets;
    Events events;
    try {
        p11vault::verify(drill_spec(nullptr), secrets, events);
        FAIL() << "no Error";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::usage) << e.what();
        EXPECT_NE(std::string(e.what()).find("a drill needs VerifySpec::drill_environment"), std::string::npos)
            << e.what();
    }
    EXPECT_EQ(secrets.asked, 0);
}

}  // namespace
}  // namespace p11vault::testing
