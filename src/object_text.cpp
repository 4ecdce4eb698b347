// SPDX-License-Identifier: Apache-2.0
#include "src/object_text.hpp"

#include <fmt/format.h>

#include "src/ossl.hpp"

namespace p11vault {

std::string describe_object(const std::vector<std::uint8_t>& id, std::string_view label) {
    return fmt::format("id={} label=\"{}\"", id.empty() ? "(none)" : ossl::hex(id), label);
}

}  // namespace p11vault
