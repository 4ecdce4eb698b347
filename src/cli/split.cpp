// p11vault split / combine: M-of-N shares of a backup password for offline ceremonies.
#include <unistd.h>

#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "p11vault/secret_source.hpp"
#include "src/atomic_file.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/common.hpp"
#include "src/shares.hpp"

namespace p11vault::cli {
namespace {

struct SplitOptions {
    std::optional<std::string> password;
    bool generate = false;
    unsigned threshold = 0;
    unsigned shares = 0;
    std::string out_dir;
};

void run_split(const SplitOptions& o) {
    if (o.generate == o.password.has_value())
        throw Error(ExitCode::usage, "give either --password SRC (split an existing password) or --generate");
    // Validate the numbers before a secret exists in memory.
    if (o.threshold < 2 || o.threshold > o.shares || o.shares > 255)
        throw Error(ExitCode::usage, "need 2 <= --threshold <= --shares <= 255");
    std::vector<std::string> paths;
    for (unsigned i = 1; i <= o.shares; ++i) {
        paths.push_back(fmt::format("{}/share-{}-of-{}.txt", o.out_dir, i, o.shares));
        if (::access(paths.back().c_str(), F_OK) == 0)
            throw Error(ExitCode::refused, paths.back() + " exists; choose an empty --out-dir");
    }
    SecretBytes secret = o.generate ? shares::generate_password()
                                    : read_secret(o.password, "password to split", "--password", Prompt::confirm);
    std::vector<shares::Share> parts = shares::split(secret, o.threshold, o.shares);
    for (std::size_t i = 0; i < parts.size(); ++i) {
        std::string text = shares::format_share(parts[i]);
        write_file_atomically(paths[i], std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()),
                              Overwrite::refuse);
        secure_wipe(text.data(), text.size());
    }
    std::printf("Wrote %u shares of set %s to %s; any %u recover the password%s.\n", o.shares,
                parts.front().set_id.c_str(), o.out_dir.c_str(), o.threshold,
                o.generate ? " (a new random password that exists only in these shares: use --password shares:FILE,...)"
                           : "");
}

struct CombineOptions {
    std::vector<std::string> shares;
    std::optional<std::string> out;
};

void run_combine(const CombineOptions& o) {
    if (!o.out && ::isatty(STDOUT_FILENO))
        throw Error(ExitCode::usage, "refusing to print the secret on a terminal: give --out FILE or redirect stdout");
    SecretBytes secret = shares::combine_files(o.shares);
    if (o.out) {
        write_file_atomically(*o.out, secret.bytes(), Overwrite::refuse);
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
    command.add_option("--out-dir", options->out_dir, "directory for share-I-of-N.txt (mode 0600)")->required();
    command.callback([options] { run_split(*options); });
}

void add_combine_command(CLI::App& command) {
    auto options = std::make_shared<CombineOptions>();
    command.add_option("--share", options->shares, "a share file (repeat, K or more)")->required();
    command.add_option("--out", options->out, "write the secret to FILE (mode 0600); else stdout if not a terminal");
    command.callback([options] { run_combine(*options); });
}

}  // namespace p11vault::cli
