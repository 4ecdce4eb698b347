// SPDX-License-Identifier: Apache-2.0
#include "src/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "p11vault/error.hpp"
#include "src/interrupt.hpp"

namespace p11vault {

namespace {

[[noreturn]] void io_error(const std::string& what, const std::string& path, int error) {
    throw Error(ErrorKind::failure, what + " " + path + ": " + std::strerror(error));
}

}  // namespace

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

void write_file_atomically(const std::string& path, std::span<const std::uint8_t> data, Overwrite overwrite) {
    struct stat existing {};
    if (overwrite == Overwrite::refuse && ::lstat(path.c_str(), &existing) == 0)
        throw Error(ErrorKind::refused, path + " exists; choose another --out or give --force to replace it");
    std::string directory = directory_of(path);
    std::string temporary = directory + "/" + kTemporaryPrefix + "XXXXXX";
    // A signal from here on is noted and acted on before the file is put in place: the
    // temporary file is removed and nothing appears at `path`.
    InterruptGuard interrupts;
    int fd = ::mkstemp(temporary.data());  // mode 0600
    if (fd < 0) io_error("cannot create a temporary file in", directory, errno);
    try {
        // Held until the file is renamed or removed: a later run can tell a temporary
        // file of a live writer from one a killed writer left (remove_stale_temporaries).
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) io_error("cannot lock", temporary, errno);
        write_all(fd, data.data(), data.size(), temporary);
        if (::fsync(fd) != 0) io_error("cannot fsync", temporary, errno);
        throw_if_interrupted("writing " + path + "; it was not written");
        if (overwrite == Overwrite::refuse) {
            // link() fails if the target appeared meanwhile: never replace a file the
            // user did not allow us to replace.
            if (::link(temporary.c_str(), path.c_str()) != 0) {
                int error = errno;
                if (error == EEXIST)
                    throw Error(ErrorKind::refused, path + " exists; choose another --out or give --force to replace it");
                io_error("cannot create", path, error);
            }
            ::unlink(temporary.c_str());
        } else if (::rename(temporary.c_str(), path.c_str()) != 0) {
            io_error("cannot rename the temporary file to", path, errno);
        }
    } catch (...) {
        ::unlink(temporary.c_str());
        if (fd >= 0) ::close(fd);
        throw;
    }
    ::close(fd);  // after fsync and rename, a close error cannot lose data
    int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
}

std::vector<std::string> remove_stale_temporaries(const std::string& directory) {
    std::vector<std::string> removed;
    DIR* listing = ::opendir(directory.c_str());
    if (listing == nullptr) return removed;
    const std::string prefix = kTemporaryPrefix;
    const uid_t me = ::geteuid();
    while (const dirent* entry = ::readdir(listing)) {
        const std::string name = entry->d_name;
        // mkstemp's six characters after the prefix, nothing else.
        if (name.size() != prefix.size() + 6 || name.rfind(prefix, 0) != 0) continue;
        const std::string path = directory + "/" + name;
        int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) continue;
        struct stat info {};
        // Only our own regular files, and only when no live writer holds the lock.
        if (::fstat(fd, &info) == 0 && S_ISREG(info.st_mode) && info.st_uid == me &&
            ::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::unlink(path.c_str()) == 0)
            removed.push_back(path);
        ::close(fd);
    }
    ::closedir(listing);
    return removed;
}

}  // namespace p11vault
