// SPDX-License-Identifier: Apache-2.0
// The boundary of the public API (issue 21), read from the sources: the command line in
// src/cli/ uses the library only through include/p11vault/, and the public headers hold
// no OpenSSL, p11-kit, JSON, fmt or CLI11 types (they include only the C++ standard
// library and each other); library code changes no environment variable.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

const fs::path kSource = P11VAULT_SOURCE_DIR;

// The quoted and angled includes of a file, in order.
std::vector<std::string> includes_of(const fs::path& file, char open) {
    static const std::regex quoted(R"re(^\s*#\s*include\s*"([^"]+)")re");
    static const std::regex angled(R"(^\s*#\s*include\s*<([^>]+)>)");
    std::vector<std::string> out;
    std::ifstream in(file);
    std::smatch match;
    for (std::string line; std::getline(in, line);)
        if (std::regex_search(line, match, open == '"' ? quoted : angled)) out.push_back(match[1]);
    return out;
}

std::vector<fs::path> files_in(const fs::path& directory) {
    std::vector<fs::path> out;
    for (const auto& entry : fs::directory_iterator(directory))
        if (entry.path().extension() == ".cpp" || entry.path().extension() == ".hpp") out.push_back(entry.path());
    return out;
}

TEST(ApiBoundary, TheCommandLineIncludesOnlyThePublicApiOfTheLibrary) {
    std::size_t files = 0;
    for (const fs::path& file : files_in(kSource / "src" / "cli")) {
        ++files;
        for (const std::string& include : includes_of(file, '"'))
            EXPECT_TRUE(include.starts_with("p11vault/") || include.starts_with("src/cli/"))
                << "src/cli/" << file.filename().string() << " includes \"" << include
                << "\": the command line uses the library through include/p11vault/ only";
    }
    EXPECT_GE(files, 10u);
}

TEST(ApiBoundary, PublicHeadersIncludeOnlyTheStandardLibraryAndEachOther) {
    const fs::path public_headers = kSource / "include" / "p11vault";
    std::size_t headers = 0;
    for (const auto& entry : fs::directory_iterator(public_headers)) {
        ++headers;
        const std::string name = entry.path().filename().string();
        for (const std::string& include : includes_of(entry.path(), '"')) {
            EXPECT_TRUE(include.starts_with("p11vault/") && fs::exists(public_headers / include.substr(9)))
                << name << " includes \"" << include << "\"";
        }
        // Standard headers have no directory and no extension (<string>, <span>).
        for (const std::string& include : includes_of(entry.path(), '<'))
            EXPECT_TRUE(include.find('/') == std::string::npos && include.find('.') == std::string::npos)
                << name << " includes <" << include << ">";
    }
    EXPECT_GE(headers, 10u);
}

// Issue 21: a library does not change its caller's environment (setenv is not
// thread-safe, and every thread and module sees the change). Only the program, src/cli/,
// may; the drill asks its caller (DrillEnvironment, include/p11vault/verify.hpp).
TEST(ApiBoundary, LibraryCodeChangesNoEnvironmentVariable) {
    static const std::regex changes_environment(R"(\b(setenv|putenv|unsetenv|clearenv)\s*\()");
    std::size_t files = 0;
    for (const fs::path& root : {kSource / "src", kSource / "pkcs11"}) {
        for (const auto& entry : fs::recursive_directory_iterator(root)) {
            const fs::path& file = entry.path();
            if (file.extension() != ".cpp" && file.extension() != ".hpp") continue;
            if (fs::relative(file, kSource).string().starts_with("src/cli/")) continue;
            ++files;
            std::ifstream in(file);
            int number = 0;
            for (std::string line; std::getline(in, line);) {
                ++number;
                if (std::regex_search(line, changes_environment))
                    ADD_FAILURE() << fs::relative(file, kSource).string() << ":" << number << ": " << line;
            }
        }
    }
    EXPECT_GE(files, 50u);
}

}  // namespace
