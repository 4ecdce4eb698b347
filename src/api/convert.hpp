// SPDX-License-Identifier: Apache-2.0
// Between the public value types (include/p11vault/) and the library's own: key reports,
// limits, profiles. Internal to src/api/.
#pragma once

#include <string>
#include <vector>

#include "p11vault/backup.hpp"
#include "p11vault/key_result.hpp"
#include "src/pkcs12/pbe.hpp"
#include "src/pkcs12/writer.hpp"
#include "src/report.hpp"

namespace p11vault::api {

// The path a KeyReport names ("token-wrap", ...; "" for none). Error(failure) for a name
// this table lacks: a path added to the library must be added to the public enum too.
KeyPath key_path_of(const std::string& name);

KeyResult key_result_of(const KeyReport& report);
std::vector<KeyResult> key_results_of(const std::vector<KeyReport>& reports);

pkcs12::Limits limits_of(const FileLimits& limits);
pkcs12::Profile profile_of(FileProfile profile);

}  // namespace p11vault::api
