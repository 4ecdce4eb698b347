// SPDX-License-Identifier: Apache-2.0
// p11vault escrow-share: one recovery officer opens their share of an M-of-N escrowed
// backup on their own token and writes it as a share file (the text format of `split`,
// mode 0600), for a restore elsewhere with --escrow-share (docs/escrow.md).
#include <unistd.h>

#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "p11vault/atomic_file.hpp"
#include "p11vault/error.hpp"
#include "p11vault/escrow.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/common.hpp"
#include "src/cli/reports.hpp"

namespace p11vault::cli {
namespace {

struct EscrowShareCommandOptions {
    std::string in;
    std::string recipient_key;
    std::optional<std::string> module;
    std::optional<std::string> pin_source;
    std::string out;
    std::size_t max_file_size = kDefaultMaxFileSize;
    std::optional<std::string> record;
};

void run(const EscrowShareCommandOptions& o) {
    // Refused before the officer's token is opened and their PIN asked for.
    if (::access(o.out.c_str(), F_OK) == 0)
        throw Error(ErrorKind::refused, o.out + " exists; choose another --out (a share file is never replaced)");
    RunRecord record;
    record.command = "escrow-share";
    record.file = o.in;
    run_recorded(o.record, record, [&] {
        const BackupFileBytes file = read_backup_file(o.in, o.max_file_size);
        record.file_sha256 = file.sha256;
        const EscrowShare share = extract_escrow_share(file.data, o.in, {o.recipient_key, o.module, o.pin_source});
        write_file_atomically(o.out, share.text.bytes(), Overwrite::refuse);
        record.details = {{"share", share.number}, {"officer", share.officer}, {"out", o.out}};
        std::printf("Wrote share %u of %s (officer %s) to %s (mode 0600)\n", share.number, o.in.c_str(),
                    printable(share.officer).c_str(), o.out.c_str());
    });
}

}  // namespace

void add_escrow_share_command(CLI::App& command) {
    auto options = std::make_shared<EscrowShareCommandOptions>();
    command.add_option("--in", options->in, "the M-of-N escrowed backup")->required()->option_text("FILE");
    command
        .add_option("--recipient-key", options->recipient_key,
                    "the officer's private key on their token, by RFC 7512 URI (pkcs11:token=KRA;object=officer1)")
        ->required()
        ->option_text("URI");
    command.add_option("--recipient-module", options->module,
                       "PKCS#11 module of the officer's token, when the URI names none (default: $P11VAULT_MODULE, else p11-kit's proxy)")
        ->option_text("PATH|NAME");
    command.add_option("--recipient-pin", options->pin_source,
                       "PIN source for the officer's token, when the URI has no pin-source (absent: prompt)")
        ->option_text("SRC");
    command.add_option("--out", options->out, "the share file to write (mode 0600; must not exist)")
        ->required()
        ->option_text("FILE");
    command.add_option("--max-file-size", options->max_file_size, "refuse larger files (bytes, default 64 MiB)");
    command.add_option("--record", options->record, "append a JSON record of this run to FILE")->option_text("FILE");
    command.callback([options] { run(*options); });
}

}  // namespace p11vault::cli
