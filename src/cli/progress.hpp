// SPDX-License-Identifier: Apache-2.0
// The progress line of backup, restore, migrate and verify on a terminal (docs/cli.md,
// "Progress"): one line on stderr, rewritten in place, "backup: 12/200 keys  key id=0c
// label="x"  0:05"; cleared before the command prints its results. Shown only when stderr
// is a terminal and --quiet is not given. And the folding of repeated notes into one
// line with a count.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "p11vault/events.hpp"

namespace p11vault::cli {

// --quiet: no progress line.
void add_quiet_option(CLI::App& command, bool& quiet);

// The Events of a run on the command line: progress as the line, warnings as
// "p11vault: warning: ..." lines (the progress line removed first).
class ProgressLine : public Events {
public:
    ProgressLine(std::string command, bool quiet);
    ~ProgressLine();
    ProgressLine(const ProgressLine&) = delete;
    ProgressLine& operator=(const ProgressLine&) = delete;

    // Redraws the line (nothing when it is not shown: --quiet, or stderr no terminal). The
    // CLI's Events::progress calls it.
    void update(std::size_t done, std::size_t total, std::string_view current);
    // Removes the line (before results or an error are printed).
    void clear();

    void warning(std::string_view text) override;
    void progress(const ProgressEvent& event) override;

private:
    std::string command_;
    bool enabled_ = false;
    bool shown_ = false;
    std::chrono::steady_clock::time_point start_;
};

// "note: TEXT" lines, each distinct text once; a text added several times for different
// keys is one line naming how many ("note: 200 keys: ...").
class Notes {
public:
    // `text` says what happened, `key` which key (a text is folded over its keys).
    void add(const std::string& text, const std::string& key);
    void print(std::FILE* out) const;

private:
    std::vector<std::pair<std::string, std::vector<std::string>>> notes_;
};

}  // namespace p11vault::cli
