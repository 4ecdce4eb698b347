// SPDX-License-Identifier: Apache-2.0
// The public face of src/shares.hpp (include/p11vault/shares.hpp): share texts in and out,
// the share bytes and their encoding stay inside.
#include "p11vault/shares.hpp"

#include <string>

#include "src/shares.hpp"

namespace p11vault {

namespace {

ShareInfo info_of(const shares::Share& share) { return {share.set_id, share.threshold, share.count, share.number}; }

// The share parser reads a std::string: the copy is wiped as soon as it is parsed.
shares::Share parse(const ShareText& share) {
    std::string copy(share.text.reveal_text());
    try {
        shares::Share parsed = shares::parse_share(copy, share.name);
        secure_wipe(copy.data(), copy.size());
        return parsed;
    } catch (...) {
        secure_wipe(copy.data(), copy.size());
        throw;
    }
}

}  // namespace

std::vector<PasswordShare> split_password(const SecretBytes& password, unsigned threshold, unsigned count) {
    std::vector<PasswordShare> out;
    for (const shares::Share& share : shares::split(password, threshold, count)) {
        std::string text = shares::format_share(share);
        out.push_back({info_of(share), SecretBytes::from_text(text)});
        secure_wipe(text.data(), text.size());
    }
    return out;
}

SecretBytes generate_share_password(unsigned bits) { return shares::generate_password(bits); }

ShareInfo parse_share_text(const ShareText& share) { return info_of(parse(share)); }

SecretBytes combine_shares(const std::vector<ShareText>& texts) {
    std::vector<shares::Share> parsed;
    parsed.reserve(texts.size());
    for (const ShareText& text : texts) parsed.push_back(parse(text));
    return shares::combine(parsed);
}

SecretBytes combine_share_files(const std::vector<std::string>& paths) { return shares::combine_files(paths); }

}  // namespace p11vault
