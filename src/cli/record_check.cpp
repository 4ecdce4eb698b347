// SPDX-License-Identifier: Apache-2.0
// p11vault record-check: verifies the hash chain of a --record file.
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "p11vault/record.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/common.hpp"

namespace p11vault::cli {

namespace {

// {"line": 3, "problem": "torn or damaged record ..."} of "line 3: torn or damaged record ...".
nlohmann::ordered_json problem_json(const std::string& problem) {
    std::size_t line = 0;
    std::string text = problem;
    if (problem.rfind("line ", 0) == 0) {
        const std::size_t colon = problem.find(": ");
        if (colon != std::string::npos) {
            line = std::stoul(problem.substr(5, colon - 5));
            text = problem.substr(colon + 2);
        }
    }
    return {{"line", line}, {"problem", text}};
}

}  // namespace

void add_record_check_command(CLI::App& command) {
    auto file = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    command.add_option("file", *file, "the record file")->required();
    command.add_flag("--json", *json, "print one JSON document on stdout");
    command.callback([file, json] {
        RecordCheck check = check_records(*file);
        if (*json) {
            nlohmann::ordered_json document;
            document["format"] = json_format("record-check");
            document["file"] = *file;
            document["records"] = check.records;
            document["intact"] = check.problems.empty();
            document["problems"] = nlohmann::ordered_json::array();
            for (const auto& problem : check.problems) document["problems"].push_back(problem_json(problem));
            print_json(document);
        } else {
            for (const auto& problem : check.problems) std::printf("%s\n", problem.c_str());
        }
        // Exit 0 and "chain intact" only for a file without a single problem: a torn line
        // is not part of the chain, but an auditor must still see it.
        if (!check.problems.empty())
            throw Error(ErrorKind::bad_input,
                        fmt::format("{}: {} record{}, {} problem{} (listed above); the file is not intact", *file,
                                    check.records, check.records == 1 ? "" : "s", check.problems.size(),
                                    check.problems.size() == 1 ? "" : "s"));
        if (!*json)
            std::printf("%s: %zu record%s, chain intact\n", file->c_str(), check.records, check.records == 1 ? "" : "s");
    });
}

}  // namespace p11vault::cli
