// SPDX-License-Identifier: Apache-2.0
// p11vault record-check: verifies the hash chain of a --record file.
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "src/cli/commands.hpp"
#include "src/record.hpp"

namespace p11vault::cli {

void add_record_check_command(CLI::App& command) {
    auto file = std::make_shared<std::string>();
    command.add_option("file", *file, "the record file")->required();
    command.callback([file] {
        RecordCheck check = check_records(*file);
        for (const auto& problem : check.problems) std::printf("%s\n", problem.c_str());
        // Exit 0 and "chain intact" only for a file without a single problem: a torn line
        // is not part of the chain, but an auditor must still see it.
        if (!check.problems.empty())
            throw Error(ExitCode::bad_input,
                        fmt::format("{}: {} record{}, {} problem{} (listed above); the file is not intact", *file,
                                    check.records, check.records == 1 ? "" : "s", check.problems.size(),
                                    check.problems.size() == 1 ? "" : "s"));
        std::printf("%s: %zu record%s, chain intact\n", file->c_str(), check.records, check.records == 1 ? "" : "s");
    });
}

}  // namespace p11vault::cli
