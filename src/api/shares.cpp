// SPDX-License-Identifier: Apache-2.0
// The public face of src/shares.hpp (include/p11vault/shares.hpp): share texts in and out,
// the share bytes and their encoding stay inside.
#include "p11vault/shares.hpp"

#include "src/shares.hpp"

namespace p11vault {

namespace {

ShareInfo info_of(const shares::Share& share) { return {share.set_id, share.threshold, share.count, share.number}; }

// Parsed in place: no copy of the share's text is made.
shares::Share parse(const ShareText& share) { return shares::parse_share(share.text.reveal_text(), share.name); }

}  // namespace

std::vector<PasswordShare> split_password(const SecretBytes& password, unsigned threshold, unsigned count) {
    std::vector<PasswordShare> out;
    for (const shares::Share& share : shares::split(password, threshold, count))
        out.push_back({info_of(share), shares::format_share(share)});
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
