// SPDX-License-Identifier: Apache-2.0
#include "src/record.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "p11vault/version.hpp"
#include "src/atomic_file.hpp"
#include "src/ossl.hpp"

namespace p11vault {

namespace {

constexpr const char* kRecordFormat = "p11vault.record/1";

std::string utc_now() {
    std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

std::string host_name() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0) return "";
    return name;
}

std::string line_hash(const std::string& line) {
    return ossl::hex(ossl::sha256(reinterpret_cast<const std::uint8_t*>(line.data()), line.size()));
}

// The last non-empty line of the file, or nothing for a new or empty file.
std::optional<std::string> last_line(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::string line, last;
    bool any = false;
    while (std::getline(in, line))
        if (!line.empty()) {
            last = line;
            any = true;
        }
    if (!any) return std::nullopt;
    return last;
}

}  // namespace

nlohmann::ordered_json key_report_json(const KeyReport& report) {
    nlohmann::ordered_json key;
    key["id"] = ossl::hex(report.id);
    key["label"] = report.label;
    key["type"] = report.type;
    key["path"] = report.path.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(report.path);
    key["status"] = report.status;
    key["spki_sha256"] = report.spki_sha256.empty() ? nlohmann::ordered_json(nullptr)
                                                    : nlohmann::ordered_json(ossl::hex(report.spki_sha256));
    key["certificate_sha256"] = report.certificate_sha256.empty()
                                    ? nlohmann::ordered_json(nullptr)
                                    : nlohmann::ordered_json(ossl::hex(report.certificate_sha256));
    key["certificate_subject"] = report.certificate_subject ? nlohmann::ordered_json(*report.certificate_subject)
                                                            : nlohmann::ordered_json(nullptr);
    key["notes"] = report.notes;
    key["renumbered_from"] = report.renumbered_from ? nlohmann::ordered_json(ossl::hex(*report.renumbered_from))
                                                    : nlohmann::ordered_json(nullptr);
    return key;
}

void append_record(const std::string& path, const RunRecord& record) {
    nlohmann::ordered_json json;
    json["format"] = kRecordFormat;
    json["time"] = utc_now();
    json["tool"] = version_text();
    json["host"] = host_name();
    json["command"] = record.command;
    json["result"] = record.succeeded ? "ok" : "failed";
    json["exit_code"] = record.exit_code;
    if (!record.succeeded) json["error"] = record.error;
    if (record.token) {
        json["token"] = {{"label", record.token->label},
                         {"serial", record.token->serial},
                         {"manufacturer", record.token->manufacturer},
                         {"model", record.token->model}};
    } else {
        json["token"] = nullptr;
    }
    json["file"] = record.file.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(record.file);
    json["file_sha256"] = record.file_sha256 ? nlohmann::ordered_json(*record.file_sha256) : nlohmann::ordered_json(nullptr);
    json["keys"] = nlohmann::ordered_json::array();
    for (const auto& key : record.keys) json["keys"].push_back(key_report_json(key));
    json["details"] = record.details;
    auto previous = last_line(path);
    json["previous_sha256"] = previous ? nlohmann::ordered_json(line_hash(*previous)) : nlohmann::ordered_json(nullptr);
    append_line(path, json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

RecordCheck check_records(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(ExitCode::bad_input, "cannot open record file " + path);
    RecordCheck check;
    std::string line;
    std::optional<std::string> previous;
    std::size_t number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (line.empty()) continue;
        nlohmann::json json = nlohmann::json::parse(line, nullptr, false);
        if (json.is_discarded() || !json.is_object() || json.value("format", "") != kRecordFormat) {
            check.problems.push_back(fmt::format("line {}: not a p11vault record", number));
        } else {
            const auto& chained = json["previous_sha256"];
            std::string expected = previous ? line_hash(*previous) : "";
            std::string actual = chained.is_string() ? chained.get<std::string>() : "";
            if (actual != expected)
                check.problems.push_back(fmt::format(
                    "line {}: {}", number,
                    previous ? "previous_sha256 does not match the line before it (a record was removed, inserted "
                               "or edited)"
                             : "the first record should have previous_sha256 null (records before it are missing)"));
        }
        previous = line;
        ++check.records;
    }
    return check;
}

}  // namespace p11vault
