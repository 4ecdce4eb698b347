// SPDX-License-Identifier: Apache-2.0
// scripts/interop-report (issue 7) run with the binary this build made. It exits 0 only
// when every producer and consumer cell agrees with the corpus manifest's expectation; its
// markdown table is shown on failure.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

// The full report repeats what the corpus tests (Corpus.*) and the other-tools tests
// check, in 30 s; here it runs on a two-row corpus (one file read, one refused) with every
// consumer, which is every code path of the script.
std::string small_corpus() {
    const std::string dir = make_temp_dir("interop-corpus");
    std::ifstream manifest(std::string(P11VAULT_CORPUS_DIR) + "/MANIFEST.tsv");
    std::ofstream small(dir + "/MANIFEST.tsv");
    std::string line;
    std::getline(manifest, line);
    small << line << "\n";
    for (const char* file : {"openssl3-ec-p384.p12", "java-jks-not-pkcs12.p12"}) {
        manifest.clear();
        manifest.seekg(0);
        while (std::getline(manifest, line)) {
            if (line.rfind(std::string(file) + "\t", 0) == 0) small << line << "\n";
        }
        std::filesystem::copy_file(std::string(P11VAULT_CORPUS_DIR) + "/" + file, dir + "/" + file);
    }
    return dir;
}

TEST(InteropReport, ASmallCorpusReportsEveryCellAsTheReadmeShowsIt) {
    const std::string corpus = small_corpus();
    RunOptions options;
    options.env["P11VAULT"] = P11VAULT_BINARY;
    options.timeout = std::chrono::seconds(280);
    const RunResult result = run({std::string(P11VAULT_SOURCE_DIR) + "/scripts/interop-report", "--corpus", corpus},
                                 options);
    std::filesystem::remove_all(corpus);
    EXPECT_EQ(result.exit_code, 0) << result.out << "\n" << result.err;
    // The report is the tables the README shows.
    EXPECT_NE(result.out.find("| file | producer | expect | verify | restore | sign |"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("| consumer | modern | legacy |"), std::string::npos) << result.out;
    EXPECT_EQ(result.out.find("FAIL"), std::string::npos) << result.out;

    // README.md shows the current table: every row printed now must be in it, verbatim.
    std::ifstream readme_file(std::string(P11VAULT_SOURCE_DIR) + "/README.md");
    const std::string readme((std::istreambuf_iterator<char>(readme_file)), std::istreambuf_iterator<char>());
    std::istringstream rows(result.out);
    std::size_t checked = 0;
    for (std::string row; std::getline(rows, row);) {
        if (row.rfind("| ", 0) != 0) continue;
        ++checked;
        EXPECT_NE(readme.find(row + "\n"), std::string::npos)
            << "README.md does not show this row of the current report (run scripts/interop-report "
               "and paste its output into README.md):\n"
            << row;
    }
    EXPECT_EQ(checked, 2u + 2u + 7u);  // two headings, two files, seven consumers
}

TEST(InteropReport, RefusesAMissingBinaryWithUsageExit) {
    RunOptions options;
    options.env["P11VAULT"] = "/nonexistent/p11vault";
    const RunResult result = run({std::string(P11VAULT_SOURCE_DIR) + "/scripts/interop-report"}, options);
    EXPECT_EQ(result.exit_code, 2) << result.out << result.err;
    EXPECT_NE(result.err.find("p11vault"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace p11vault::testing
