// SPDX-License-Identifier: Apache-2.0
// InterruptGuard and the atomic file writer under a signal: the signal is noted, not
// fatal, while a guard lives; the writer then removes its temporary file, writes nothing
// at the target and throws Interrupted with the shell's exit code.
#include <signal.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "src/atomic_file.hpp"
#include "src/interrupt.hpp"

namespace p11vault {
namespace {

std::vector<std::string> entries(const std::filesystem::path& dir) {
    std::vector<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) out.push_back(entry.path().filename());
    return out;
}

class AtomicWriteInterruptTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() / ("p11vault-interrupt-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path dir_;
};

TEST_F(AtomicWriteInterruptTest, SignalBeforeTheRenameLeavesNoFileAtAll) {
    const std::vector<std::uint8_t> data(4096, 0x42);
    InterruptGuard outer;  // the signal arrives while the writer's guard is in place
    ASSERT_EQ(::raise(SIGTERM), 0);
    try {
        write_file_atomically((dir_ / "backup.p12").string(), data, Overwrite::refuse);
        FAIL() << "no Interrupted";
    } catch (const Interrupted& e) {
        EXPECT_EQ(e.kind(), ErrorKind::interrupted_term);
        EXPECT_EQ(e.signal(), SIGTERM);
        EXPECT_NE(std::string(e.what()).find("interrupted by SIGTERM during writing"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(entries(dir_).empty());
}

TEST_F(AtomicWriteInterruptTest, WithoutASignalTheFileIsWritten) {
    const std::vector<std::uint8_t> data(16, 0x42);
    write_file_atomically((dir_ / "backup.p12").string(), data, Overwrite::refuse);
    EXPECT_EQ(entries(dir_), std::vector<std::string>{"backup.p12"});
}

TEST(InterruptGuardTest, ExitCodesAreThoseOfAShell) {
    for (auto [signal, code] : {std::pair{SIGINT, 130}, std::pair{SIGTERM, 143}, std::pair{SIGHUP, 129}}) {
        InterruptGuard guard;
        ASSERT_EQ(::raise(signal), 0);
        try {
            throw_if_interrupted("a test");
            FAIL() << signal_name(signal) << " not noted";
        } catch (const Interrupted& e) {
            EXPECT_EQ(static_cast<int>(e.kind()), code);
        }
    }
}

TEST(InterruptGuardTest, TheFirstSignalIsTheOneReported) {
    InterruptGuard guard;
    ASSERT_EQ(::raise(SIGHUP), 0);
    ASSERT_EQ(::raise(SIGINT), 0);
    EXPECT_EQ(InterruptGuard::take(), SIGHUP);
    EXPECT_EQ(InterruptGuard::take(), 0);
}

}  // namespace
}  // namespace p11vault
