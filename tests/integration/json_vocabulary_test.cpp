// SPDX-License-Identifier: Apache-2.0
// One JSON vocabulary across subcommands (issue 23, item 4): verify names keys and
// certificates by `id` and `label` and hashes in lowercase hex like every other document
// (the old names stay in p11vault.verify/1, deprecated), drill entries are structured,
// and record-check, split and combine have --json.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

TEST(JsonVocabulary, VerifySpeaksTheWordsOfTheOtherDocuments) {
    TestToken token(Backend::softhsm);
    {
        auto session = token.open_session();
        certify(*session, generate_ec(*session, "P-256", {0x0a, 0x01}, "signer"));
    }
    const std::string file = token.dir() + "/v.p12";
    const RunResult made = backup(token, file, {"--all", "--json"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    const auto backed_up = stdout_json(made);

    const RunResult run = run_with_token(token, "verify", {"--in", file, "--drill", "--json"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const auto document = stdout_json(run);
    EXPECT_EQ(document["format"], "p11vault.verify/1");
    const auto& key = document["keys"][0];
    EXPECT_EQ(key["id"], "0a01");
    EXPECT_EQ(key["label"], "signer");
    EXPECT_EQ(key["id"], backed_up["keys"][0]["id"]);
    EXPECT_EQ(key["label"], backed_up["keys"][0]["label"]);
    // Deprecated, still there in major 1.
    EXPECT_EQ(key["local_key_id"], "0a01");
    EXPECT_EQ(key["friendly_name"], "signer");

    const auto& certificate = document["certificates"][0];
    EXPECT_EQ(certificate["id"], "0a01");
    EXPECT_EQ(certificate["label"], "signer");
    EXPECT_EQ(certificate["certificate_sha256"], backed_up["keys"][0]["certificate_sha256"]);
    std::string colons = certificate["sha256_fingerprint"];
    std::string hex;
    for (char c : colons)
        if (c != ':') hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(certificate["certificate_sha256"], hex);

    ASSERT_EQ(document["drill"].size(), 1u) << document.dump(2);
    const auto& drilled = document["drill"][0];
    EXPECT_EQ(drilled["id"], "0a01");
    EXPECT_EQ(drilled["label"], "signer");
    EXPECT_EQ(drilled["type"], "EC-P256");
    EXPECT_EQ(drilled["ok"], true);
    EXPECT_TRUE(drilled["key"].is_string());  // deprecated
}

TEST(JsonVocabulary, RecordCheckSplitAndCombineHaveJson) {
    const std::string dir = make_temp_dir("json-vocabulary");
    // record-check: a file with a damaged line between two lines.
    write_text(dir + "/records", "not json\n");
    const RunResult checked = run_p11vault({"record-check", "--json", dir + "/records"});
    EXPECT_EQ(checked.exit_code, 4) << checked.err;
    const auto report = stdout_json(checked);
    EXPECT_EQ(report["format"], "p11vault.record-check/1");
    EXPECT_EQ(report["records"], 0);
    EXPECT_EQ(report["intact"], false);
    ASSERT_EQ(report["problems"].size(), 1u);
    EXPECT_EQ(report["problems"][0]["line"], 1);
    EXPECT_EQ(report["problems"][0]["problem"].get<std::string>().rfind("torn or damaged record", 0), 0u)
        << report.dump();

    RunOptions options;
    options.env["P11VAULT_TEST_PW"] = "split this password";
    const RunResult split = run_p11vault({"split", "--password", "env:P11VAULT_TEST_PW", "--threshold", "2",
                                          "--shares", "3", "--out-dir", dir + "/shares", "--json"},
                                         options);
    ASSERT_EQ(split.exit_code, 0) << split.err;
    const auto made = stdout_json(split);
    EXPECT_EQ(made["format"], "p11vault.split/1");
    EXPECT_EQ(made["threshold"], 2);
    ASSERT_EQ(made["shares"].size(), 3u);
    EXPECT_EQ(made["shares"][1]["number"], 2);
    EXPECT_EQ(made["shares"][1]["file"], dir + "/shares/share-2-of-3.txt");
    EXPECT_TRUE(made["shares"][1]["qr"].is_null());
    EXPECT_NE(read_text(dir + "/shares/share-2-of-3.txt").find("set: " + made["set"].get<std::string>()),
              std::string::npos);
    EXPECT_EQ(split.out.find("split this password"), std::string::npos);

    const std::vector<std::string> shares = {dir + "/shares/share-1-of-3.txt", dir + "/shares/share-3-of-3.txt"};
    const RunResult no_out = run_p11vault({"combine", "--share", shares[0], "--share", shares[1], "--json"});
    EXPECT_EQ(no_out.exit_code, 2);
    EXPECT_EQ(no_out.err_lines(),
              std::vector<std::string>{"p11vault: error: combine --json needs --out FILE for the secret"});
    EXPECT_EQ(no_out.out, "");
    const RunResult combined = run_p11vault(
        {"combine", "--share", shares[0], "--share", shares[1], "--out", dir + "/recovered", "--json"});
    ASSERT_EQ(combined.exit_code, 0) << combined.err;
    const auto recovered = stdout_json(combined);
    EXPECT_EQ(recovered["format"], "p11vault.combine/1");
    EXPECT_EQ(recovered["out"], dir + "/recovered");
    EXPECT_EQ(recovered["shares"], nlohmann::json(shares));
    EXPECT_EQ(read_text(dir + "/recovered"), "split this password");
    EXPECT_EQ(combined.out.find("split this password"), std::string::npos);
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace p11vault::testing
