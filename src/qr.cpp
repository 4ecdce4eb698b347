// SPDX-License-Identifier: Apache-2.0
#include "src/qr.hpp"

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "src/secret_filter.hpp"

namespace p11vault::qr {

namespace {

// QR version 40 with error correction M holds at most 2,331 bytes; the largest share
// text is far below that, so anything near it is a bug, not a share.
constexpr std::size_t kMaxText = 2331;
// A PNG of a version-40 code at the default module size is about 10 KiB; a runaway
// child is cut off well above that.
constexpr std::size_t kMaxImage = 1u << 20;

constexpr const char* kHint = " (install it with: apt install qrencode, or leave out --qr)";

[[noreturn]] void fail(const std::string& what) { throw Error(ErrorKind::failure, "qrencode: " + what + kHint); }

std::string qrencode() {
    std::string path = find_system_program("qrencode");
    if (path.empty()) fail("not found in /usr/bin, /bin or /usr/local/bin");
    return path;
}

SecretBytes run_qrencode(std::vector<std::string> args, std::span<const std::uint8_t> input) {
    args.insert(args.begin(), qrencode());
    SecretBytes image = run_filter(args, input, kMaxImage, kHint);
    if (image.empty()) fail("no image");
    return image;
}

}  // namespace

bool available() {
    try {
        const std::uint8_t probe[] = {'p'};
        (void)run_qrencode({"-t", "PNG", "-o", "-"}, probe);
        return true;
    } catch (const Error&) {
        return false;
    }
}

SecretBytes png_of(const SecretBytes& text) {
    if (text.size() > kMaxText) fail(fmt::format("{} bytes do not fit in a QR code", text.size()));
    // -8: the bytes as they are (no Kanji or other mode guessing); -l M: error correction
    // for a printed page that gets creased; -m 4: the quiet zone scanners need.
    return run_qrencode({"-8", "-l", "M", "-m", "4", "-s", "6", "-t", "PNG", "-o", "-"}, text.bytes());
}

}  // namespace p11vault::qr
