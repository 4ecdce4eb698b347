// SPDX-License-Identifier: Apache-2.0
// Writing a file so that it is either complete or absent: a temporary file (mode 0600)
// in the target directory, fsync, rename, fsync of the directory.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace p11vault {

enum class Overwrite { refuse, allow };

// Error(refused) when `path` exists and overwrite is refused; Error(failure) naming the
// path and errno text on I/O errors. The temporary file is removed on every failure.
void write_file_atomically(const std::string& path, std::span<const std::uint8_t> data, Overwrite overwrite);

}  // namespace p11vault
