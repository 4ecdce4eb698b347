// SPDX-License-Identifier: Apache-2.0
#include "src/api/convert.hpp"

#include <iterator>

#include "p11vault/error.hpp"

namespace p11vault {

namespace {

constexpr KeyPath kAllPaths[] = {KeyPath::none,           KeyPath::token_wrap,   KeyPath::token_wrap_legacy,
                                 KeyPath::host_reencrypt, KeyPath::attribute_read, KeyPath::token_unwrap,
                                 KeyPath::token_unwrap_legacy, KeyPath::host_decrypt};

}  // namespace

const char* key_path_name(KeyPath path) {
    switch (path) {
        case KeyPath::none: return "";
        case KeyPath::token_wrap: return "token-wrap";
        case KeyPath::token_wrap_legacy: return "token-wrap-legacy";
        case KeyPath::host_reencrypt: return "host-reencrypt";
        case KeyPath::attribute_read: return "attribute-read";
        case KeyPath::token_unwrap: return "token-unwrap";
        case KeyPath::token_unwrap_legacy: return "token-unwrap-legacy";
        case KeyPath::host_decrypt: return "host-decrypt";
    }
    return "";
}

const char* file_profile_name(FileProfile profile) {
    switch (profile) {
        case FileProfile::modern: return "modern";
        case FileProfile::fips: return "fips";
        case FileProfile::legacy: return "legacy";
    }
    return "modern";
}

namespace api {

KeyPath key_path_of(const std::string& name) {
    for (KeyPath path : kAllPaths)
        if (name == key_path_name(path)) return path;
    throw Error(ErrorKind::failure, "internal: a key took the path \"" + name + "\", which the public KeyPath lacks");
}

KeyResult key_result_of(const KeyReport& report) {
    KeyResult key;
    key.id = report.id;
    key.label = report.label;
    key.type = report.type;
    key.secret_key = report.secret_key;
    key.path = key_path_of(report.path);
    key.status = report.status;
    key.certificate_subject = report.certificate_subject;
    key.spki_sha256 = report.spki_sha256;
    key.certificate_sha256 = report.certificate_sha256;
    key.notes = report.notes;
    key.repaired = report.repaired;
    key.renumbered_from = report.renumbered_from;
    return key;
}

std::vector<KeyResult> key_results_of(const std::vector<KeyReport>& reports) {
    std::vector<KeyResult> keys;
    keys.reserve(reports.size());
    for (const auto& report : reports) keys.push_back(key_result_of(report));
    return keys;
}

pkcs12::Limits limits_of(const FileLimits& limits) {
    pkcs12::Limits out;
    out.max_iterations = limits.max_iterations;
    out.max_file_size = limits.max_file_size;
    out.max_objects = limits.max_objects;
    out.max_label_length = limits.max_label_length;
    return out;
}

pkcs12::Profile profile_of(FileProfile profile) {
    switch (profile) {
        case FileProfile::fips: return pkcs12::Profile::fips;
        case FileProfile::legacy: return pkcs12::Profile::legacy;
        case FileProfile::modern: break;
    }
    return pkcs12::Profile::modern;
}

}  // namespace api
}  // namespace p11vault
