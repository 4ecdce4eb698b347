// SPDX-License-Identifier: Apache-2.0
// M-of-N password shares for key ceremonies: Shamir secret sharing over GF(256)
// (libgfshare), one printable text file per share.
//
// What is split is the secret, its length and padding, followed by a short hash of them:
// a wrong combination (too few shares, shares of different sets) is detected on combine,
// and no share holds anything that lets its holder test password guesses offline.
// Each line of share data carries its own checksum, so a typing mistake in a share typed
// back from paper is found at the line where it happened.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "p11vault/secret.hpp"

namespace p11vault::shares {

struct Share {
    std::string set_id;       // hex, random per split
    unsigned threshold = 0;   // K
    unsigned count = 0;       // N
    unsigned number = 0;      // 1..N
    SecretBytes data;         // the share bytes
};

// Splits `secret` (at most 255 bytes) into `count` shares, any `threshold` of which
// recover it. Error(usage) unless 2 <= threshold <= count <= 255.
std::vector<Share> split(const SecretBytes& secret, unsigned threshold, unsigned count);

// Recovers the secret. Error(bad_input) for fewer than K shares, shares of different
// sets, duplicate numbers, or shares that do not combine to a consistent secret.
SecretBytes combine(const std::vector<Share>& shares);

// The printable text of a share (secret: it is the share), and its parser
// (Error(bad_input) naming the line with a bad checksum), which copies no share data
// out of `text` into an ordinary string.
SecretBytes format_share(const Share& share);
Share parse_share(std::string_view text, const std::string& name);

// A random password of `bits` bits of entropy, in typing-friendly base32.
SecretBytes generate_password(unsigned bits = 130);

// The text of a share file, read into SecretBytes. Error(usage) "cannot read WHAT PATH".
SecretBytes read_share_file(const std::string& path, std::string_view what);

// Reads and combines share files (the `shares:FILE,FILE,...` secret source).
SecretBytes combine_files(const std::vector<std::string>& paths);

}  // namespace p11vault::shares
