// SPDX-License-Identifier: Apache-2.0
// Writing a file so that it is either complete or absent, for the files p11vault makes
// (backups, share files, printouts): a temporary file (mode 0600) in the target
// directory, fsync, rename, fsync of the directory.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "p11vault/export.hpp"

namespace p11vault {

enum class Overwrite { refuse, allow };

// Error(refused) when `path` exists and overwrite is refused; Error(failure) naming the
// path and errno text on I/O errors; an Error with exit code 128 + signal when SIGINT,
// SIGTERM or SIGHUP arrives while it writes (they are held off until the file is in place
// or removed). The temporary file is removed on every failure, and is flock'ed while it
// exists.
P11VAULT_EXPORT void write_file_atomically(const std::string& path, std::span<const std::uint8_t> data,
                                           Overwrite overwrite);

}  // namespace p11vault
