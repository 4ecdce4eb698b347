// SPDX-License-Identifier: Apache-2.0
#include "p11vault/record.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

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

// A line is a record when it is a JSON object of this format; the chain links records
// only, so a torn line (an interrupted write) is never part of it.
bool is_record(const std::string& line) {
    nlohmann::json json = nlohmann::json::parse(line, nullptr, false);
    if (json.is_discarded() || !json.is_object()) return false;
    auto format = json.find("format");
    return format != json.end() && format->is_string() && format->get<std::string>() == kRecordFormat;
}

// Every record begins with these bytes: a file that does not is not a record file.
const std::string& record_prefix() {
    static const std::string prefix = std::string("{\"format\":\"") + kRecordFormat + "\"";
    return prefix;
}

// pread of up to `size` bytes at `offset` (fewer only at the end of the file).
std::string read_at(int fd, off_t offset, std::size_t size, const std::string& path) {
    std::string out(size, '\0');
    std::size_t done = 0;
    while (done < size) {
        ssize_t n = ::pread(fd, out.data() + done, size - done, offset + static_cast<off_t>(done));
        if (n < 0) {
            if (errno == EINTR) continue;
            io_error("cannot read", path, errno);
        }
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    out.resize(done);
    return out;
}

// Reads a file from its end towards its start, one line at a time, so that appending
// costs the size of the last records, not of the whole log.
class BackwardLines {
public:
    BackwardLines(int fd, off_t end, const std::string& path) : fd_(fd), start_(end), path_(path) {}

    // The line before the current position (without its newline); nothing at the start.
    std::optional<std::string> previous() {
        if (start_ == 0 && pending_.empty()) return std::nullopt;
        for (;;) {
            // The line ends at the end of pending_ (without its newline) and starts after
            // the newline before that, which may not have been read yet.
            std::size_t end = pending_.size();
            if (end > 0 && pending_.back() == '\n') --end;
            auto newline = end == 0 ? std::string::npos : pending_.rfind('\n', end - 1);
            if (newline != std::string::npos) {
                std::string line = pending_.substr(newline + 1, end - newline - 1);
                pending_.resize(newline + 1);
                return line;
            }
            if (start_ == 0) {
                std::string line = pending_.substr(0, end);
                pending_.clear();
                return line;
            }
            constexpr off_t kChunk = 64 * 1024;
            off_t size = std::min(start_, kChunk);
            start_ -= size;
            pending_.insert(0, read_at(fd_, start_, static_cast<std::size_t>(size), path_));
        }
    }

private:
    int fd_;
    off_t start_;          // file offset of pending_[0]
    std::string pending_;  // bytes [start_, start_ + size) not yet returned
    const std::string& path_;
};

std::string record_option(const std::string& path) { return "--record " + path; }

nlohmann::ordered_json optional_text(const std::string& text) {
    return text.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(text);
}

nlohmann::ordered_json optional_text(const std::optional<std::string>& text) {
    return text ? nlohmann::ordered_json(*text) : nlohmann::ordered_json(nullptr);
}

nlohmann::ordered_json key_json(const RecordedKey& key) {
    nlohmann::ordered_json json;
    json["id"] = key.id;
    json["label"] = key.label;
    json["type"] = key.type;
    json["path"] = optional_text(key.path);
    json["status"] = key.status;
    json["spki_sha256"] = optional_text(key.spki_sha256);
    json["certificate_sha256"] = optional_text(key.certificate_sha256);
    json["certificate_subject"] = optional_text(key.certificate_subject);
    json["notes"] = key.notes;
    json["repaired"] = key.repaired;
    json["renumbered_from"] = optional_text(key.renumbered_from);
    return json;
}

// Bytes that are not UTF-8 (a token label may hold any) become U+FFFD.
std::string dump_line(const nlohmann::ordered_json& json) {
    return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The caller's details text as a JSON object; checked before the file is locked.
nlohmann::ordered_json details_of(const RunRecord& record) {
    nlohmann::ordered_json details = nlohmann::ordered_json::parse(record.details_json, nullptr, false);
    if (details.is_discarded() || !details.is_object())
        throw Error(ErrorKind::usage, "the details of a " + record.command + " record are not a JSON object");
    return details;
}

nlohmann::ordered_json record_json(const RunRecord& record, nlohmann::ordered_json details) {
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
    json["file"] = optional_text(record.file);
    json["file_sha256"] = optional_text(record.file_sha256);
    json["keys"] = nlohmann::ordered_json::array();
    for (const auto& key : record.keys) json["keys"].push_back(key_json(key));
    json["details"] = std::move(details);
    return json;
}

// Holds an exclusive flock on a descriptor for as long as it lives.
class FileLock {
public:
    FileLock(int fd, const std::string& path) : fd_(fd) {
        while (::flock(fd_, LOCK_EX) != 0)
            if (errno != EINTR) io_error("cannot lock", path, errno);
    }
    ~FileLock() { ::flock(fd_, LOCK_UN); }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

private:
    int fd_;
};

}  // namespace

std::string recorded_key_json(const RecordedKey& key) { return dump_line(key_json(key)); }

RecordFile::RecordFile(std::string path) : path_(std::move(path)) {
    // O_EXCL first, to know whether this open created the file (its directory entry is
    // then fsynced too); the retry covers a file removed between the two opens.
    for (int attempt = 0; fd_ < 0 && attempt < 3; ++attempt) {
        fd_ = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd_ >= 0) {
            created_ = true;
        } else if (errno == EEXIST) {
            fd_ = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
            if (fd_ < 0 && errno == ENOENT) continue;
        }
        if (fd_ < 0)
            throw Error(ErrorKind::usage, record_option(path_) + ": cannot open for appending: " + std::strerror(errno));
    }
    if (fd_ < 0) throw Error(ErrorKind::usage, record_option(path_) + ": cannot open for appending: it keeps changing");
    struct stat status {};
    if (::fstat(fd_, &status) != 0 || !S_ISREG(status.st_mode)) {
        ::close(fd_);
        throw Error(ErrorKind::usage, record_option(path_) + ": cannot open for appending: not a regular file");
    }
    try {
        std::string start = read_at(fd_, 0, record_prefix().size(), path_);
        if (record_prefix().compare(0, start.size(), start) != 0)
            throw Error(ErrorKind::bad_input, record_option(path_) + " is not a p11vault record file (its first line is "
                                                                    "not a p11vault.record/1 object); name a new "
                                                                    "file or an existing record file");
    } catch (...) {
        ::close(fd_);
        throw;
    }
}

RecordFile::~RecordFile() {
    if (fd_ >= 0) ::close(fd_);
}

std::vector<std::string> RecordFile::append(const RunRecord& record) {
    nlohmann::ordered_json json = record_json(record, details_of(record));
    std::vector<std::string> warnings;
    FileLock lock(fd_, path_);
    // Under the lock, the file holds only whole appends of other runs, and maybe a line
    // torn by one that was interrupted.
    struct stat status {};
    if (::fstat(fd_, &status) != 0) io_error("cannot stat", path_, errno);
    std::string text;
    if (status.st_size > 0 && read_at(fd_, status.st_size - 1, 1, path_) != "\n") {
        text = "\n";
        warnings.push_back(record_option(path_) + " did not end with a newline (an earlier write was interrupted); "
                                                  "this record starts on a new line, and `p11vault record-check " +
                           path_ + "` names the torn line");
    }
    std::optional<std::string> previous;
    BackwardLines lines(fd_, status.st_size, path_);
    while (auto line = lines.previous())
        if (is_record(*line)) {
            previous = std::move(*line);
            break;
        }
    json["previous_sha256"] = previous ? nlohmann::ordered_json(line_hash(*previous)) : nlohmann::ordered_json(nullptr);
    text += dump_line(json);
    text += '\n';
    // With O_APPEND every write lands at the end; the loop only continues a short write.
    write_all(fd_, reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), path_);
    if (::fsync(fd_) != 0) io_error("cannot fsync", path_, errno);
    if (created_) {
        auto slash = path_.rfind('/');
        std::string directory = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
        int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir >= 0) {
            ::fsync(dir);
            ::close(dir);
        }
        created_ = false;
    }
    return warnings;
}

std::vector<std::string> append_record(const std::string& path, const RunRecord& record) {
    return RecordFile(path).append(record);
}

RecordCheck check_records(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(ErrorKind::bad_input, path + ": cannot open: " + std::strerror(errno));
    std::string text;
    try {
        struct stat status {};
        if (::fstat(fd, &status) != 0)
            throw Error(ErrorKind::bad_input, path + ": cannot stat: " + std::strerror(errno));
        if (S_ISDIR(status.st_mode)) throw Error(ErrorKind::bad_input, path + ": is a directory, not a record file");
        char buffer[64 * 1024];
        for (;;) {
            ssize_t n = ::read(fd, buffer, sizeof buffer);
            if (n < 0) {
                if (errno == EINTR) continue;
                throw Error(ErrorKind::bad_input, path + ": cannot read: " + std::strerror(errno));
            }
            if (n == 0) break;
            text.append(buffer, static_cast<std::size_t>(n));
        }
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);

    RecordCheck check;
    std::optional<std::string> previous;  // the last record line
    std::size_t number = 0;
    for (std::size_t start = 0; start < text.size();) {
        auto newline = text.find('\n', start);
        const bool terminated = newline != std::string::npos;
        std::string line = text.substr(start, terminated ? newline - start : std::string::npos);
        start = terminated ? newline + 1 : text.size();
        ++number;
        if (line.empty()) continue;
        nlohmann::json json = nlohmann::json::parse(line, nullptr, false);
        if (json.is_discarded()) {
            check.problems.push_back(fmt::format(
                "line {}: {}; not part of the chain", number,
                terminated ? "torn or damaged record (not valid JSON)"
                           : "torn record (the file ends without a newline: a write was interrupted)"));
            continue;
        }
        if (!is_record(line)) {
            check.problems.push_back(fmt::format("line {}: not a p11vault record (no \"format\": \"{}\"); not part "
                                                 "of the chain",
                                                 number, kRecordFormat));
            continue;
        }
        const auto& chained = json["previous_sha256"];
        std::string expected = previous ? line_hash(*previous) : "";
        std::string actual = chained.is_string() ? chained.get<std::string>() : "";
        if (actual != expected)
            check.problems.push_back(fmt::format(
                "line {}: {}", number,
                previous ? "previous_sha256 does not match the record before it (a record was removed, inserted "
                           "or edited)"
                         : "the first record should have previous_sha256 null (records before it are missing)"));
        if (!terminated)
            check.problems.push_back(fmt::format("line {}: no newline after the last record (a write was "
                                                 "interrupted); the record is complete and part of the chain",
                                                 number));
        previous = std::move(line);
        ++check.records;
    }
    return check;
}

}  // namespace p11vault
