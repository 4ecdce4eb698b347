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
        if (!check.problems.empty())
            throw Error(ExitCode::bad_input, fmt::format("{}: the record chain is broken ({} problem{})", *file,
                                                         check.problems.size(), check.problems.size() == 1 ? "" : "s"));
        std::printf("%s: %zu records, chain intact\n", file->c_str(), check.records);
    });
}

}  // namespace p11vault::cli
