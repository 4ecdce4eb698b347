// SPDX-License-Identifier: Apache-2.0
// How a key left the token (docs/extraction.md): what the exporter chooses and backup
// reports, in a header of its own so that neither has to include the other's.
#pragma once

namespace p11vault {

enum class ExtractionPath { token_wrap, token_wrap_legacy, host_reencrypt, attribute_read };

// The path's name as printed and recorded: "token-wrap", "host-reencrypt", ...
const char* path_name(ExtractionPath path);

}  // namespace p11vault
