// SPDX-License-Identifier: Apache-2.0
// Writing a file so that it is either complete or absent: a temporary file (mode 0600)
// in the target directory, fsync, rename, fsync of the directory.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "p11vault/atomic_file.hpp"  // Overwrite, write_file_atomically

namespace p11vault {

// The temporary files' names: the prefix and six characters of mkstemp.
inline constexpr const char* kTemporaryPrefix = ".p11vault-";

// Throws Error(failure): "`what` `path`: errno text" ("cannot fsync /x/y: No space left
// on device"). For every file p11vault writes (here and the record file).
[[noreturn]] void io_error(const std::string& what, const std::string& path, int error);

// Writes all of `size` bytes to `fd` (retrying short writes and EINTR); Error(failure)
// naming `path` and the errno text.
void write_all(int fd, const std::uint8_t* data, std::size_t size, const std::string& path);

// The directory part of `path` ("." when it has none).
std::string directory_of(const std::string& path);

// Removes the temporary files a killed writer (kill -9, power loss) left in `directory`:
// ours (same user, regular files named like ours) and not locked by a live writer.
// Returns the paths removed, for the warning that says so.
std::vector<std::string> remove_stale_temporaries(const std::string& directory);

}  // namespace p11vault
