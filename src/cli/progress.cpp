// SPDX-License-Identifier: Apache-2.0
#include "src/cli/progress.hpp"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "src/cli/common.hpp"
#include "src/cli/reports.hpp"

namespace p11vault::cli {

void add_quiet_option(CLI::App& command, bool& quiet) {
    command.add_flag("--quiet", quiet, "no progress line on the terminal (there is none when stderr is not one)");
}

ProgressLine::ProgressLine(std::string command, bool quiet)
    : command_(std::move(command)), start_(std::chrono::steady_clock::now()) {
    enabled_ = !quiet && ::isatty(STDERR_FILENO) == 1;
}

ProgressLine::~ProgressLine() { clear(); }

void ProgressLine::warning(std::string_view text) {
    clear();
    print_warnings({std::string(text)});
}

void ProgressLine::progress(const ProgressEvent& event) {
    update(event.done, event.total, event.current);
}

void ProgressLine::clear() {
    if (!shown_) return;
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    shown_ = false;
}

void ProgressLine::update(std::size_t done, std::size_t total, std::string_view current) {
    if (!enabled_) return;
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start_).count();
    std::string line = fmt::format("{}: {}/{} key{}", command_, done, total, total == 1 ? "" : "s");
    if (!current.empty()) line += "  " + printable(current);
    line += fmt::format("  {}:{:02}", seconds / 60, seconds % 60);
    // One terminal line: a long label is cut rather than wrapped (a wrapped line cannot be
    // rewritten in place).
    if (line.size() > 79) line = line.substr(0, 76) + "...";
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    shown_ = true;
}

void Notes::add(const std::string& text, const std::string& key) {
    auto note = std::find_if(notes_.begin(), notes_.end(), [&](const auto& entry) { return entry.first == text; });
    if (note == notes_.end()) note = notes_.insert(notes_.end(), {text, {}});
    note->second.push_back(key);
}

void Notes::print(std::FILE* out) const {
    constexpr std::size_t named = 3;
    for (const auto& [text, keys] : notes_) {
        std::string which = keys.front();
        for (std::size_t k = 1; k < keys.size() && k < named; ++k) which += ", " + keys[k];
        if (keys.size() > named) which += fmt::format(" and {} more", keys.size() - named);
        if (keys.size() == 1)
            std::fprintf(out, "note: key %s: %s\n", printable(which).c_str(), printable(text).c_str());
        else
            std::fprintf(out, "note: %zu keys (%s): %s\n", keys.size(), printable(which).c_str(),
                         printable(text).c_str());
    }
}

}  // namespace p11vault::cli
