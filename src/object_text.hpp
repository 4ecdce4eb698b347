// SPDX-License-Identifier: Apache-2.0
// How messages name a key, certificate or token object: by CKA_ID (or localKeyID) and
// label (or friendlyName), the two things an operator can look it up by.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace p11vault {

// `id=0a1b label="CA key"`; `id=(none)` for an empty id, `label=""` for none.
std::string describe_object(const std::vector<std::uint8_t>& id, std::string_view label);

}  // namespace p11vault
