// SPDX-License-Identifier: Apache-2.0
// p11vault split / combine: M-of-N shares of a backup password for offline ceremonies.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>

#include <fmt/format.h>

#include "p11vault/atomic_file.hpp"
#include "p11vault/error.hpp"
#include "p11vault/secret_source.hpp"
#include "p11vault/shares.hpp"
#include "p11vault/sheet.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/common.hpp"

namespace p11vault::cli {
namespace {

// share-1-of-3.txt -> share-1-of-3.png: the QR code of the same text; .pdf, .html: its
// printable sheet.
std::string sibling_path(const std::string& text_path, std::string_view extension) {
    return text_path.substr(0, text_path.size() - std::string_view(".txt").size()) + std::string(extension);
}
std::string png_path(const std::string& text_path) { return sibling_path(text_path, ".png"); }

// "2026-12-03": the day printed on the sheets (UTC, as in records).
std::string today_utc() {
    const std::time_t now = std::time(nullptr);
    std::tm parts{};
    gmtime_r(&now, &parts);
    char text[16];
    std::strftime(text, sizeof text, "%Y-%m-%d", &parts);
    return text;
}

struct SplitOptions {
    std::optional<std::string> password;
    bool generate = false;
    unsigned threshold = 0;
    unsigned shares = 0;
    std::string out_dir;
    bool qr = false;
    std::optional<std::string> sheet;  // "pdf" or "html"
    bool json = false;
};

// --out-dir: an existing directory, or one made here with mode 0700 (shares are secrets)
// and removed again when the split fails before writing. Its parent must exist: a typo in
// a path should not grow a tree.
class ShareDirectory {
public:
    explicit ShareDirectory(const std::string& path) : path_(path) {
        if (path.empty()) throw Error(ErrorKind::usage, "--out-dir needs a directory");
        struct stat status {};
        if (::stat(path.c_str(), &status) == 0) {
            if (!S_ISDIR(status.st_mode)) throw Error(ErrorKind::usage, "--out-dir " + path + " is not a directory");
            return;
        }
        if (::mkdir(path.c_str(), 0700) != 0) {
            throw Error(ErrorKind::usage, fmt::format("--out-dir {}: cannot create it: {} (its parent directory "
                                                     "must exist)",
                                                     path, std::strerror(errno)));
        }
        created_ = true;
    }
    ~ShareDirectory() {
        if (created_ && !kept_) (void)::rmdir(path_.c_str());
    }
    ShareDirectory(const ShareDirectory&) = delete;
    ShareDirectory& operator=(const ShareDirectory&) = delete;
    void keep() { kept_ = true; }
    bool created() const { return created_; }

private:
    std::string path_;
    bool created_ = false;
    bool kept_ = false;
};

void run_split(const SplitOptions& o) {
    if (o.generate == o.password.has_value())
        throw Error(ErrorKind::usage, "give either --password SRC (split an existing password) or --generate");
    // Validate the numbers before a secret exists in memory.
    if (o.threshold < 2 || o.threshold > o.shares || o.shares > 255)
        throw Error(ErrorKind::usage, "need 2 <= --threshold <= --shares <= 255");
    ShareDirectory directory(o.out_dir);
    std::vector<std::string> paths;
    for (unsigned i = 1; i <= o.shares; ++i) {
        paths.push_back(fmt::format("{}/share-{}-of-{}.txt", o.out_dir, i, o.shares));
        if (::access(paths.back().c_str(), F_OK) == 0)
            throw Error(ErrorKind::refused, paths.back() + " exists; choose an empty --out-dir");
        if (o.qr && ::access(png_path(paths.back()).c_str(), F_OK) == 0)
            throw Error(ErrorKind::refused, png_path(paths.back()) + " exists; choose an empty --out-dir");
        if (o.sheet && ::access(sibling_path(paths.back(), "." + *o.sheet).c_str(), F_OK) == 0)
            throw Error(ErrorKind::refused,
                        sibling_path(paths.back(), "." + *o.sheet) + " exists; choose an empty --out-dir");
    }
    if (o.qr && !share_printing_available())
        throw Error(ErrorKind::failure, "--qr needs the qrencode program: apt install qrencode, or leave out --qr");
    if (o.sheet && !share_printing_available())
        throw Error(ErrorKind::failure, "--sheet needs the qrencode program: apt install qrencode, or leave out --sheet");
    SecretBytes secret = o.generate ? generate_share_password()
                                    : read_secret(o.password, "password to split", "--password", Prompt::confirm);
    std::vector<PasswordShare> parts = split_password(secret, o.threshold, o.shares);
    // Every image and sheet is made before the first file is written, so that a failing
    // qrencode leaves no partial set behind.
    SharePrintRequest request;
    request.qr_image = o.qr;
    if (o.sheet) request.sheet = *o.sheet == "pdf" ? ShareSheetFormat::pdf : ShareSheetFormat::html;
    request.date = today_utc();
    std::vector<SharePrintouts> printouts;
    for (const auto& part : parts) printouts.push_back(print_share(part, request));
    directory.keep();
    for (std::size_t i = 0; i < parts.size(); ++i) {
        write_file_atomically(paths[i], parts[i].text.bytes(), Overwrite::refuse);
        if (o.qr) write_file_atomically(png_path(paths[i]), printouts[i].qr_image.bytes(), Overwrite::refuse);
        if (o.sheet)
            write_file_atomically(sibling_path(paths[i], "." + *o.sheet), printouts[i].sheet.bytes(), Overwrite::refuse);
    }
    if (o.json) {
        nlohmann::ordered_json document;
        document["format"] = json_format("split");
        document["set"] = parts.front().info.set_id;
        document["threshold"] = o.threshold;
        document["shares"] = nlohmann::ordered_json::array();
        for (std::size_t i = 0; i < parts.size(); ++i) {
            document["shares"].push_back({{"number", parts[i].info.number},
                                          {"file", paths[i]},
                                          {"qr", o.qr ? nlohmann::ordered_json(png_path(paths[i])) : nullptr},
                                          {"sheet", o.sheet ? nlohmann::ordered_json(sibling_path(paths[i], "." + *o.sheet))
                                                            : nullptr}});
        }
        document["out_dir"] = o.out_dir;
        document["out_dir_created"] = directory.created();
        document["generated"] = o.generate;
        print_json(document);
        return;
    }
    std::printf("Wrote %u shares of set %s to %s%s%s%s; any %u recover the password%s.\n", o.shares,
                parts.front().info.set_id.c_str(), o.out_dir.c_str(), directory.created() ? " (made, mode 0700)" : "",
                o.qr ? " (each also as a QR code, .png)" : "",
                !o.sheet ? "" : *o.sheet == "pdf" ? " (each with a sheet to print, .pdf)" : " (each with a sheet to print, .html)",
                o.threshold,
                o.generate ? " (a new random password that exists only in these shares: use --password shares:FILE,...)"
                           : "");
}

struct CombineOptions {
    std::vector<std::string> shares;
    std::optional<std::string> out;
    bool json = false;
};

void run_combine(const CombineOptions& o) {
    // The JSON document takes stdout, so the secret needs a file of its own.
    if (o.json && !o.out) throw Error(ErrorKind::usage, "combine --json needs --out FILE for the secret");
    if (!o.out && ::isatty(STDOUT_FILENO))
        throw Error(ErrorKind::usage, "refusing to print the secret on a terminal: give --out FILE or redirect stdout");
    SecretBytes secret = combine_share_files(o.shares);
    if (o.out) {
        write_file_atomically(*o.out, secret.bytes(), Overwrite::refuse);
        if (o.json) {
            nlohmann::ordered_json document;
            document["format"] = json_format("combine");
            document["out"] = *o.out;
            document["shares"] = o.shares;
            print_json(document);
            return;
        }
        std::fprintf(stderr, "p11vault: recovered the secret into %s (mode 0600)\n", o.out->c_str());
    } else {
        std::fwrite(secret.data(), 1, secret.size(), stdout);
        std::fflush(stdout);
    }
}

}  // namespace

void add_split_command(CLI::App& command) {
    auto options = std::make_shared<SplitOptions>();
    command.add_option("--password", options->password, "the password to split (env:, file:, fd:, stdin)")
        ->option_text("SRC");
    command.add_flag("--generate", options->generate,
                     "make a random 130-bit password that exists only in the shares");
    command.add_option("--threshold", options->threshold, "shares needed to recover (K)")->required();
    command.add_option("--shares", options->shares, "shares to make (N)")->required();
    command
        .add_option("--out-dir", options->out_dir,
                    "directory for share-I-of-N.txt (mode 0600); made with mode 0700 when missing")
        ->required();
    command.add_flag("--qr", options->qr,
                     "also write each share as a QR code, share-I-of-N.png (mode 0600), for printing and scanning; "
                     "needs qrencode");
    command
        .add_option("--sheet", options->sheet,
                    "also write each share as a page to print, share-I-of-N.pdf or .html (mode 0600): QR code, text "
                    "lines, set, signature lines, handling instructions; needs qrencode")
        ->check(CLI::IsMember({"pdf", "html"}));
    command.add_flag("--json", options->json, "print one JSON document on stdout");
    command.callback([options] { run_split(*options); });
}

void add_combine_command(CLI::App& command) {
    auto options = std::make_shared<CombineOptions>();
    command.add_option("--share", options->shares, "a share file (repeat, K or more)")->required();
    command.add_option("--out", options->out, "write the secret to FILE (mode 0600); else stdout if not a terminal");
    command.add_flag("--json", options->json, "print one JSON document on stdout (needs --out)");
    command.callback([options] { run_combine(*options); });
}

}  // namespace p11vault::cli
