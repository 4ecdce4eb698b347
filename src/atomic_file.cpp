// SPDX-License-Identifier: Apache-2.0
#include "src/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "p11vault/error.hpp"

namespace p11vault {

namespace {

[[noreturn]] void io_error(const std::string& what, const std::string& path, int error) {
    throw Error(ExitCode::failure, what + " " + path + ": " + std::strerror(error));
}

void write_all(int fd, const std::uint8_t* data, std::size_t size, const std::string& path) {
    while (size > 0) {
        ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            io_error("cannot write", path, errno);
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
}

std::string directory_of(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

}  // namespace

void write_file_atomically(const std::string& path, std::span<const std::uint8_t> data, Overwrite overwrite) {
    struct stat existing {};
    if (overwrite == Overwrite::refuse && ::lstat(path.c_str(), &existing) == 0)
        throw Error(ExitCode::refused, path + " exists; choose another --out or give --force to replace it");
    std::string directory = directory_of(path);
    std::string temporary = directory + "/.p11vault-XXXXXX";
    int fd = ::mkstemp(temporary.data());  // mode 0600
    if (fd < 0) io_error("cannot create a temporary file in", directory, errno);
    try {
        write_all(fd, data.data(), data.size(), temporary);
        if (::fsync(fd) != 0) io_error("cannot fsync", temporary, errno);
        if (::close(fd) != 0) {
            fd = -1;
            io_error("cannot close", temporary, errno);
        }
        fd = -1;
        if (overwrite == Overwrite::refuse) {
            // link() fails if the target appeared meanwhile: never replace a file the
            // user did not allow us to replace.
            if (::link(temporary.c_str(), path.c_str()) != 0) {
                int error = errno;
                if (error == EEXIST)
                    throw Error(ExitCode::refused, path + " exists; choose another --out or give --force to replace it");
                io_error("cannot create", path, error);
            }
            ::unlink(temporary.c_str());
        } else if (::rename(temporary.c_str(), path.c_str()) != 0) {
            io_error("cannot rename the temporary file to", path, errno);
        }
    } catch (...) {
        if (fd >= 0) ::close(fd);
        ::unlink(temporary.c_str());
        throw;
    }
    int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
}

}  // namespace p11vault
