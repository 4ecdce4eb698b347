// SPDX-License-Identifier: Apache-2.0
// The boundary of the public API (issue 21), read from the sources: the command line in
// src/cli/ uses the library only through include/p11vault/, and the public headers hold
// no OpenSSL, p11-kit, JSON, fmt or CLI11 types (they include only the C++ standard
// library and each other); library code changes no environment variable.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
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

// A type defined twice in namespace p11vault (a public header and a library header, or two
// public headers) is an ODR violation: each translation unit sees its own layout, and the
// program frees one as the other (AddressSanitizer found EscrowRecipient defined in
// backup.hpp and escrow.hpp). Every type of that namespace has one definition.
TEST(ApiBoundary, EveryTypeOfNamespaceP11vaultIsDefinedOnce) {
    static const std::regex definition(
        R"(^(?:struct|class|enum class|enum)\s+(?:P11VAULT_EXPORT\s+)?(\w+)\s*(?:final\s*)?[:{])");
    std::map<std::string, std::vector<std::string>> defined_in;  // type -> files
    std::size_t headers = 0;
    for (const fs::path& directory : {kSource / "include" / "p11vault", kSource / "src", kSource / "src" / "api",
                                      kSource / "src" / "cli"}) {
        for (const auto& entry : fs::directory_iterator(directory)) {
            if (entry.path().extension() != ".hpp") continue;
            std::ifstream in(entry.path());
            // Only the headers whose types are in namespace p11vault itself (not
            // p11vault::pkcs12, p11vault::cli, ...): the namespace the public API shares.
            std::vector<std::string> lines;
            bool top_namespace = false;
            for (std::string line; std::getline(in, line);) {
                top_namespace = top_namespace || line == "namespace p11vault {";
                lines.push_back(line);
            }
            if (!top_namespace) continue;
            ++headers;
            std::smatch match;
            for (const std::string& line : lines)
                if (std::regex_search(line, match, definition))
                    defined_in[match[1]].push_back(fs::relative(entry.path(), kSource).string());
        }
    }
    EXPECT_GE(headers, 20u) << "the headers were not found under " << kSource;
    for (const auto& [type, files] : defined_in)
        EXPECT_EQ(files.size(), 1u) << "p11vault::" << type << " is defined in " << files.front() << " and "
                                    << files.back();
}
