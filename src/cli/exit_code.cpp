// SPDX-License-Identifier: Apache-2.0
#include "src/cli/exit_code.hpp"

namespace p11vault::cli {

int exit_code_of(ErrorKind kind, int signal) {
    switch (kind) {
        case ErrorKind::usage: return static_cast<int>(ExitCode::usage);
        case ErrorKind::bad_password: return static_cast<int>(ExitCode::bad_password);
        case ErrorKind::bad_input: return static_cast<int>(ExitCode::bad_input);
        case ErrorKind::token: return static_cast<int>(ExitCode::token);
        case ErrorKind::refused: return static_cast<int>(ExitCode::refused);
        case ErrorKind::interrupted:
            if (signal > 0 && signal < 128) return 128 + signal;
            return static_cast<int>(ExitCode::failure);
        case ErrorKind::failure: break;
    }
    return static_cast<int>(ExitCode::failure);
}

}  // namespace p11vault::cli
