// SPDX-License-Identifier: Apache-2.0
#include "src/shares.hpp"

extern "C" {
#include <libgfshare.h>
}

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "src/ossl.hpp"

namespace p11vault::shares {

namespace {

constexpr const char* kHeader = "p11vault password share, format 1";
constexpr const char* kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr std::size_t kBytesPerLine = 10;  // 16 base32 characters
constexpr std::size_t kHashLength = 8;
constexpr std::size_t kMinimumPadded = 64;

// libgfshare draws its polynomial coefficients from this function: a CSPRNG, not rand().
void fill_random(unsigned char* buffer, unsigned int size) {
    if (RAND_bytes(buffer, static_cast<int>(size)) != 1) std::abort();  // no safe way to continue a split
}

using GfShare = ossl::Owned<gfshare_ctx, gfshare_ctx_free>;

std::string base32(const std::uint8_t* data, std::size_t size) {
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (std::size_t i = 0; i < size; ++i) {
        buffer = (buffer << 8) | data[i];
        bits += 8;
        while (bits >= 5) {
            out.push_back(kBase32[(buffer >> (bits - 5)) & 31]);
            bits -= 5;
        }
    }
    if (bits > 0) out.push_back(kBase32[(buffer << (5 - bits)) & 31]);
    return out;
}

bool unbase32(const std::string& text, SecretBytes& out) {
    unsigned buffer = 0;
    int bits = 0;
    for (char c : text) {
        const char* at = std::strchr(kBase32, std::toupper(static_cast<unsigned char>(c)));
        if (at == nullptr || c == '\0') return false;
        buffer = (buffer << 5) | static_cast<unsigned>(at - kBase32);
        bits += 5;
        if (bits >= 8) {
            out.push_back(static_cast<std::uint8_t>(buffer >> (bits - 8)));
            bits -= 8;
        }
    }
    return true;
}

std::string line_checksum(const std::string& set_id, unsigned number, std::size_t line, const std::uint8_t* data,
                          std::size_t size) {
    std::string prefix = fmt::format("p11vault-share-line|{}|{}|{}|", set_id, number, line);
    std::vector<std::uint8_t> input(prefix.begin(), prefix.end());
    input.insert(input.end(), data, data + size);
    auto digest = ossl::sha256(input.data(), input.size());
    secure_wipe(input.data(), input.size());
    return ossl::hex(digest.data(), 2);
}

// [length][secret][zero padding][first 8 bytes of SHA-256 of everything before]
SecretBytes make_payload(const SecretBytes& secret) {
    std::size_t padded = std::max(kMinimumPadded, (secret.size() + 1 + 31) / 32 * 32);
    SecretBytes payload(padded);
    payload.data()[0] = static_cast<std::uint8_t>(secret.size());
    if (!secret.empty()) std::memcpy(payload.data() + 1, secret.data(), secret.size());
    auto digest = ossl::sha256(payload.data(), payload.size());
    payload.append(digest.data(), kHashLength);
    return payload;
}

}  // namespace

std::vector<Share> split(const SecretBytes& secret, unsigned threshold, unsigned count) {
    if (threshold < 2 || threshold > count || count > 255)
        throw Error(ErrorKind::usage, "need 2 <= --threshold <= --shares <= 255");
    if (secret.size() > 255) throw Error(ErrorKind::usage, "the secret to split is longer than 255 bytes");
    SecretBytes payload = make_payload(secret);
    std::vector<unsigned char> numbers(count);
    for (unsigned i = 0; i < count; ++i) numbers[i] = static_cast<unsigned char>(i + 1);
    gfshare_fill_rand = fill_random;
    GfShare ctx(gfshare_ctx_init_enc(numbers.data(), count, static_cast<unsigned char>(threshold),
                                     static_cast<unsigned>(payload.size())));
    if (!ctx) throw Error(ErrorKind::failure, "libgfshare could not set up the split");
    gfshare_ctx_enc_setsecret(ctx.get(), payload.data());
    std::string set_id = ossl::hex(ossl::random_bytes(8));
    std::vector<Share> out;
    for (unsigned i = 0; i < count; ++i) {
        Share share;
        share.set_id = set_id;
        share.threshold = threshold;
        share.count = count;
        share.number = i + 1;
        share.data = SecretBytes(payload.size());
        gfshare_ctx_enc_getshare(ctx.get(), static_cast<unsigned char>(i), share.data.data());
        out.push_back(std::move(share));
    }
    return out;
}

SecretBytes combine(const std::vector<Share>& shares) {
    if (shares.empty()) throw Error(ErrorKind::usage, "no shares given");
    const Share& first = shares.front();
    std::set<unsigned> numbers;
    for (const auto& share : shares) {
        if (share.set_id != first.set_id || share.threshold != first.threshold || share.data.size() != first.data.size())
            throw Error(ErrorKind::bad_input, fmt::format("the shares belong to different sets ({} and {}); use shares "
                                                         "of one split only",
                                                         first.set_id, share.set_id));
        if (!numbers.insert(share.number).second)
            throw Error(ErrorKind::bad_input, fmt::format("share {} was given twice", share.number));
    }
    if (shares.size() < first.threshold)
        throw Error(ErrorKind::bad_input, fmt::format("{} share{} given, but this set needs {} to recover the secret",
                                                     shares.size(), shares.size() == 1 ? "" : "s", first.threshold));
    // libgfshare also calls gfshare_fill_rand from gfshare_ctx_free (it overwrites its
    // buffers before freeing them), so it must be set for combining as well.
    gfshare_fill_rand = fill_random;
    std::vector<unsigned char> share_numbers;
    for (const auto& share : shares) share_numbers.push_back(static_cast<unsigned char>(share.number));
    GfShare ctx(gfshare_ctx_init_dec(share_numbers.data(), static_cast<unsigned>(shares.size()),
                                     static_cast<unsigned>(first.data.size())));
    if (!ctx) throw Error(ErrorKind::failure, "libgfshare could not set up the combination");
    for (std::size_t i = 0; i < shares.size(); ++i)
        gfshare_ctx_dec_giveshare(ctx.get(), static_cast<unsigned char>(i), const_cast<std::uint8_t*>(shares[i].data.data()));
    SecretBytes payload(first.data.size());
    gfshare_ctx_dec_extract(ctx.get(), payload.data());
    if (payload.size() < kMinimumPadded + kHashLength)
        throw Error(ErrorKind::bad_input, "the shares are too short to hold a secret");
    std::size_t body = payload.size() - kHashLength;
    auto digest = ossl::sha256(payload.data(), body);
    std::size_t length = payload.data()[0];
    if (CRYPTO_memcmp(digest.data(), payload.data() + body, kHashLength) != 0 || length + 1 > body)
        throw Error(ErrorKind::bad_input,
                    "the shares do not combine to a consistent secret: a share is damaged or from another set");
    return SecretBytes(payload.data() + 1, length);
}

std::string format_share(const Share& share) {
    std::string text = fmt::format(
        "{}\n"
        "# Keep this share secret and offline. Any {} of the {} shares of set {} recover\n"
        "# the password; fewer reveal nothing about it. Recover with: p11vault combine --share FILE ...\n"
        "set: {}\nthreshold: {}\nshares: {}\nshare: {}\nbytes: {}\ndata:\n",
        kHeader, share.threshold, share.count, share.set_id, share.set_id, share.threshold, share.count, share.number,
        share.data.size());
    for (std::size_t offset = 0, line = 1; offset < share.data.size(); offset += kBytesPerLine, ++line) {
        std::size_t n = std::min(kBytesPerLine, share.data.size() - offset);
        std::string encoded = base32(share.data.data() + offset, n);
        std::string grouped;
        for (std::size_t i = 0; i < encoded.size(); i += 4) grouped += (i ? " " : "") + encoded.substr(i, 4);
        text += fmt::format("{:02} {}  {}\n", line, grouped,
                            line_checksum(share.set_id, share.number, line, share.data.data() + offset, n));
        secure_wipe(encoded.data(), encoded.size());
        secure_wipe(grouped.data(), grouped.size());
    }
    text += "end\n";
    return text;
}

Share parse_share(const std::string& text, const std::string& name) {
    auto bad = [&](const std::string& what) -> Error {
        return Error(ErrorKind::bad_input, fmt::format("{}: {}", name, what));
    };
    std::istringstream in(text);
    std::string line;
    if (!std::getline(in, line) || line != kHeader) throw bad("not a p11vault share file");
    Share share;
    std::size_t bytes = 0;
    bool in_data = false, ended = false;
    std::size_t expected_line = 1;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        if (!in_data) {
            auto colon = line.find(':');
            if (colon == std::string::npos) throw bad("unexpected line: " + line.substr(0, 40));
            std::string key = line.substr(0, colon), value = line.substr(colon + 1);
            value.erase(0, value.find_first_not_of(' '));
            try {
                if (key == "set") share.set_id = value;
                else if (key == "threshold") share.threshold = static_cast<unsigned>(std::stoul(value));
                else if (key == "shares") share.count = static_cast<unsigned>(std::stoul(value));
                else if (key == "share") share.number = static_cast<unsigned>(std::stoul(value));
                else if (key == "bytes") bytes = std::stoul(value);
                else if (key == "data") in_data = true;
            } catch (const std::exception&) {
                throw bad("bad value for " + key);
            }
            continue;
        }
        if (line == "end") {
            ended = true;
            break;
        }
        std::istringstream fields(line);
        std::vector<std::string> tokens;
        for (std::string token; fields >> token;) tokens.push_back(token);
        if (tokens.size() < 3) throw bad(fmt::format("data line {} is incomplete", expected_line));
        std::string encoded;
        for (std::size_t i = 1; i + 1 < tokens.size(); ++i) encoded += tokens[i];
        SecretBytes decoded;
        if (!unbase32(encoded, decoded)) throw bad(fmt::format("data line {} has a character that is not base32", expected_line));
        secure_wipe(encoded.data(), encoded.size());
        std::string checksum = tokens.back();
        std::transform(checksum.begin(), checksum.end(), checksum.begin(), ::tolower);
        if (checksum != line_checksum(share.set_id, share.number, expected_line, decoded.data(), decoded.size()))
            throw bad(fmt::format("data line {} does not match its checksum: check it against the paper copy",
                                  expected_line));
        share.data.append(decoded.data(), decoded.size());
        ++expected_line;
    }
    if (!ended) throw bad("the share is truncated (no 'end' line)");
    if (share.set_id.empty() || share.threshold < 2 || share.number == 0 || share.number > share.count ||
        share.data.size() != bytes)
        throw bad("the share header is incomplete or inconsistent");
    return share;
}

SecretBytes generate_password(unsigned bits) {
    std::size_t size = (bits + 7) / 8;
    std::vector<std::uint8_t> random = ossl::random_bytes(size);
    std::string text = base32(random.data(), random.size());
    secure_wipe(random.data(), random.size());
    SecretBytes password = SecretBytes::from_text(text);
    secure_wipe(text.data(), text.size());
    return password;
}

SecretBytes combine_files(const std::vector<std::string>& paths) {
    std::vector<Share> shares;
    for (const auto& path : paths) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw Error(ErrorKind::usage, "cannot read share file " + path);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        shares.push_back(parse_share(text, path));
        secure_wipe(text.data(), text.size());
    }
    return combine(shares);
}

}  // namespace p11vault::shares
