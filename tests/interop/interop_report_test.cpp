// scripts/interop-report (issue 7) run the way `scripts/test` runs everything: with the
// binary this build made. It exits 0 only when every producer and consumer cell agrees
// with the corpus manifest's expectation; its markdown table is shown on failure.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "tests/support/run.hpp"

namespace p11vault::testing {
namespace {

TEST(InteropReport, EveryCellAgreesWithTheExpectation) {
    RunOptions options;
    options.env["P11VAULT"] = P11VAULT_BINARY;
    options.env["P11VAULT_CORPUS_DIR"] = P11VAULT_CORPUS_DIR;
    options.timeout = std::chrono::seconds(580);  // ctest kills the test at 600 s
    const RunResult result = run({std::string(P11VAULT_SOURCE_DIR) + "/scripts/interop-report"}, options);
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
            << "README.md does not show this row of the current report (paste the output of "
               "scripts/interop-report into README.md):\n"
            << row;
    }
    EXPECT_GT(checked, 60u);
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
