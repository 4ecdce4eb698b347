// SPDX-License-Identifier: Apache-2.0
// `split --sheet pdf|html` (issue 23, item 2): a page per share that gets printed. The
// round trip: each PDF is rendered to PNG with pdftoppm (poppler-utils), the QR code is
// decoded from the rendered page with zbarimg, and the decoded shares combine back into
// the password. The page's text (pdftotext) holds share I of N, the set, the threshold,
// the share's data lines with their checksums, its fingerprint, the signature lines and
// the handling instructions, and no line of any other share. `--qr` images carry a
// caption and still scan.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

constexpr const char* kSheetCeremonyPassword = "sheet ceremony password 42";

RunResult split(const std::string& dir, const std::vector<std::string>& extra) {
    RunOptions options;
    options.env["P11VAULT_TEST_PW"] = kSheetCeremonyPassword;
    std::vector<std::string> args = {"split", "--password", "env:P11VAULT_TEST_PW", "--threshold", "2",
                                     "--shares", "3", "--out-dir", dir};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_p11vault(args, options);
}

// The data lines of a share text ("01 ABCD EFGH ...  checksum").
std::vector<std::string> data_lines(const std::string& share_text) {
    std::vector<std::string> lines;
    bool in_data = false;
    std::size_t start = 0;
    while (start < share_text.size()) {
        const std::size_t end = share_text.find('\n', start);
        const std::string line = share_text.substr(start, end - start);
        if (line == "end") in_data = false;
        if (in_data) lines.push_back(line);
        if (line == "data:") in_data = true;
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return lines;
}

// Runs of spaces as one space.
std::string squeezed(const std::string& text) {
    std::string out;
    for (char c : text)
        if (c != ' ' || out.empty() || out.back() != ' ') out += c;
    return out;
}

std::string share_name(int i) { return "share-" + std::to_string(i) + "-of-3"; }

TEST(ShareSheetTest, PrintedPagesScanBackIntoThePassword) {
    const std::string dir = make_temp_dir("split-sheet");
    const RunResult made = split(dir, {"--sheet", "pdf", "--json"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    const auto document = stdout_json(made);
    EXPECT_EQ(document["shares"][0]["sheet"], dir + "/share-1-of-3.pdf");
    const std::string set = document["set"];

    std::vector<std::string> texts;
    for (int i : {1, 2, 3}) texts.push_back(read_text(dir + "/" + share_name(i) + ".txt"));

    std::vector<std::string> scanned;
    for (int i : {1, 3}) {
        SCOPED_TRACE(share_name(i));
        const std::string pdf = dir + "/" + share_name(i) + ".pdf";
        EXPECT_EQ(file_mode(pdf), 0600u);
        const RunResult pages = run({"pdfinfo", pdf});
        ASSERT_EQ(pages.exit_code, 0) << pages.err;
        EXPECT_EQ(squeezed(pages.out).find("Pages: 1\n") != std::string::npos, true) << pages.out;

        const RunResult render = run({"pdftoppm", "-r", "150", "-png", "-singlefile", pdf, dir + "/page"});
        ASSERT_EQ(render.exit_code, 0) << render.err;
        const RunResult scan = run({"zbarimg", "--raw", "-q", dir + "/page.png"});
        ASSERT_EQ(scan.exit_code, 0) << "zbarimg cannot read the rendered page: " << scan.err;
        std::string text = scan.out;
        ASSERT_FALSE(text.empty());
        text.pop_back();  // zbarimg's own newline
        EXPECT_EQ(text, texts[static_cast<std::size_t>(i - 1)]);
        scanned.push_back(dir + "/scanned-" + std::to_string(i) + ".txt");
        write_text(scanned.back(), text);

        RunResult words = run({"pdftotext", "-layout", pdf, "-"});
        ASSERT_EQ(words.exit_code, 0) << words.err;
        words.out = squeezed(words.out);  // pdftotext's spacing is its own
        EXPECT_NE(words.out.find("Password share " + std::to_string(i) + " of 3"), std::string::npos) << words.out;
        EXPECT_NE(words.out.find("Set " + set), std::string::npos) << words.out;
        EXPECT_NE(words.out.find("any 2 of 3 shares recover the password"), std::string::npos) << words.out;
        EXPECT_NE(words.out.find("Share fingerprint (SHA-256 of the share text): " +
                                 sha256_hex(texts[static_cast<std::size_t>(i - 1)]).substr(0, 4)),
                  std::string::npos)
            << words.out;
        EXPECT_NE(words.out.find("Custodian"), std::string::npos);
        EXPECT_NE(words.out.find("Witness"), std::string::npos);
        EXPECT_NE(words.out.find("Signature ____"), std::string::npos);
        EXPECT_NE(words.out.find("tamper-evident envelope"), std::string::npos);
        for (std::size_t other = 0; other < texts.size(); ++other) {
            for (const auto& line : data_lines(texts[other])) {
                if (other == static_cast<std::size_t>(i - 1))
                    EXPECT_NE(words.out.find(squeezed(line)), std::string::npos) << "missing: " << line;
                else
                    EXPECT_EQ(words.out.find(squeezed(line)), std::string::npos) << "another share's line: " << line;
            }
        }
    }
    const RunResult combined =
        run_p11vault({"combine", "--share", scanned[0], "--share", scanned[1], "--out", dir + "/recovered"});
    ASSERT_EQ(combined.exit_code, 0) << combined.err;
    EXPECT_EQ(read_text(dir + "/recovered"), kSheetCeremonyPassword);
    std::filesystem::remove_all(dir);
}

TEST(ShareSheetTest, HtmlSheetHoldsTheQrCodeAndTheLines) {
    const std::string dir = make_temp_dir("split-sheet-html");
    const RunResult made = split(dir, {"--sheet", "html"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    const std::string html = read_text(dir + "/share-2-of-3.html");
    EXPECT_EQ(file_mode(dir + "/share-2-of-3.html"), 0600u);
    EXPECT_NE(html.find("@page { size: A4"), std::string::npos);
    EXPECT_NE(html.find("<h1>Password share 2 of 3</h1>"), std::string::npos) << html;
    for (const auto& line : data_lines(read_text(dir + "/share-2-of-3.txt")))
        EXPECT_NE(html.find(line), std::string::npos) << line;
    for (const auto& line : data_lines(read_text(dir + "/share-1-of-3.txt")))
        EXPECT_EQ(html.find(line), std::string::npos) << line;
    // The inline QR code decodes into the share text.
    const std::string marker = "data:image/png;base64,";
    const std::size_t start = html.find(marker) + marker.size();
    const std::string base64 = html.substr(start, html.find('"', start) - start);
    write_text(dir + "/qr.b64", base64);
    const RunResult decoded = run({"sh", "-c", "base64 -d < '" + dir + "/qr.b64' > '" + dir + "/qr.png' && zbarimg "
                                                                                           "--raw -q '" + dir + "/qr.png'"});
    ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
    EXPECT_EQ(decoded.out, read_text(dir + "/share-2-of-3.txt") + "\n");
    std::filesystem::remove_all(dir);
}

TEST(ShareSheetTest, QrImagesCarryACaptionAndStillScan) {
    const std::string dir = make_temp_dir("split-qr-caption");
    const RunResult made = split(dir, {"--qr"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    const std::string png = dir + "/share-3-of-3.png";
    const RunResult scan = run({"zbarimg", "--raw", "-q", png});
    ASSERT_EQ(scan.exit_code, 0) << scan.err;
    EXPECT_EQ(scan.out, read_text(dir + "/share-3-of-3.txt") + "\n");
    // The caption is drawn under the code: the image is taller than it is wide (qrencode's
    // own images are square). Width and height are the PNG's IHDR fields.
    const std::string bytes = read_text(png);
    ASSERT_GT(bytes.size(), 24u);
    auto be32 = [&](std::size_t at) {
        std::uint32_t value = 0;
        for (std::size_t i = 0; i < 4; ++i) value = value << 8 | static_cast<unsigned char>(bytes[at + i]);
        return value;
    };
    const std::uint32_t width = be32(16), height = be32(20);
    EXPECT_GT(height, width);
    std::filesystem::remove_all(dir);
}

TEST(ShareSheetTest, AnExistingSheetRefusesBeforeAnySecretExists) {
    const std::string dir = make_temp_dir("split-sheet-exists");
    write_text(dir + "/share-2-of-3.pdf", "mine");
    const RunResult made = split(dir, {"--sheet", "pdf"});
    EXPECT_EQ(made.exit_code, 6) << made.err;
    EXPECT_EQ(made.err_lines(), std::vector<std::string>{"p11vault: error: " + dir +
                                                         "/share-2-of-3.pdf exists; choose an empty --out-dir"});
    EXPECT_EQ(directory_entries(dir), std::vector<std::string>{"share-2-of-3.pdf"});
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace p11vault::testing
