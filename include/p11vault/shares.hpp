// SPDX-License-Identifier: Apache-2.0
// M-of-N shares of a password for key ceremonies (`p11vault split` / `combine`, the
// `shares:FILE,...` password source): Shamir secret sharing over GF(256), each share a
// printable text with a checksum on every data line, so that a share typed back from
// paper fails at the line holding the typing mistake. A wrong set of shares (too few,
// from different splits, damaged) is found on combining; no share lets its holder test
// password guesses offline. Share texts are secrets and are held as SecretBytes.
#pragma once

#include <string>
#include <vector>

#include "p11vault/export.hpp"
#include "p11vault/secret.hpp"

namespace p11vault {

// What a share says about itself in its header.
struct ShareInfo {
    std::string set_id;      // hex, random per split: shares of one split share it
    unsigned threshold = 0;  // K: shares needed to recover
    unsigned count = 0;      // N: shares made
    unsigned number = 0;     // I: 1..N
};

// One share as its holder keeps it: the text of its share file.
struct PasswordShare {
    ShareInfo info;
    SecretBytes text;
};

// Splits `password` (at most 255 bytes) into `count` shares, any `threshold` of which
// recover it, in share order 1..count. Error(usage) unless 2 <= threshold <= count <= 255
// and the password fits.
P11VAULT_EXPORT std::vector<PasswordShare> split_password(const SecretBytes& password, unsigned threshold,
                                                          unsigned count);

// A new random password of `bits` bits of entropy in typing-friendly base32, for a secret
// that should exist only in its shares (`split --generate`).
P11VAULT_EXPORT SecretBytes generate_share_password(unsigned bits = 130);

// A share text to read, with what names it in messages (a path, "officer 2's share").
struct ShareText {
    std::string name;
    SecretBytes text;
};

// The header of a share text, after checking the whole text (every line's checksum).
// Error(bad_input) naming `share.name` and the bad line.
P11VAULT_EXPORT ShareInfo parse_share_text(const ShareText& share);

// Recovers the password from K or more shares. Error(bad_input) for a text that is no
// share or has a bad line (naming it), for fewer shares than the set needs, shares of
// different sets, a share given twice, or shares that do not combine to a consistent
// secret; Error(usage) for no shares at all.
P11VAULT_EXPORT SecretBytes combine_shares(const std::vector<ShareText>& shares);

// combine_shares of share files. Error(usage) naming a file that cannot be read.
P11VAULT_EXPORT SecretBytes combine_share_files(const std::vector<std::string>& paths);

}  // namespace p11vault
