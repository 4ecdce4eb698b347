// SPDX-License-Identifier: Apache-2.0
// Mutation test (issue 8): thousands of deterministic mutants of good PKCS#12 files (bit
// flips, truncations, DER length changes, inserted bytes), read in-process through
// pkcs12::Reader and decrypt_key, must each end in Error(bad_password) or
// Error(bad_input), never another exception or a sanitizer report. A mutant may be read
// successfully only when its MAC still verifies, and then it must hold exactly what the
// original holds. About fifty of them also go through `p11vault verify`: exit 3 or 4,
// one `p11vault: error:` line.
//
// Files: a p11vault backup (modern profile), a p11vault backup (legacy profile), and the
// corpus's Windows 10 TripleDES export (password "1").
#include <gtest/gtest.h>

#include <openssl/x509.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "p11vault/error.hpp"
#include "src/pkcs12/reader.hpp"
#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/sanitizers.hpp"
#include "tests/support/test_token.hpp"


namespace p11vault::testing {
namespace {

using pkcs12::Bytes;

// Under ASan (scripts/test runs it with the slow unwinder, which costs OpenSSL's many small
// allocations dearly) every 8th mutant is read, so that the test stays at a few seconds;
// the ordinary build reads all of them.
#ifdef P11VAULT_TEST_SANITIZED
constexpr std::size_t kSampleEvery = 8;
#else
constexpr std::size_t kSampleEvery = 1;
#endif

// The most one mutant may take to be read or refused.
constexpr std::chrono::seconds kTimeBound{5};

Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
}

struct Mutant {
    std::string what;  // "flip bit 3 of byte 120", for messages
    Bytes data;
};

// One DER header: where it starts, where its length bytes are, and its content.
struct Tlv {
    std::size_t start = 0;         // tag byte
    std::size_t length_at = 0;     // first length byte
    std::size_t length_size = 0;   // number of length bytes
    std::size_t content_at = 0;
    std::size_t content_size = 0;
    bool constructed = false;
    std::vector<std::size_t> children_ends;  // end offsets of direct children (constructed)
};

// Walks the definite-length DER of `data[from, to)` and collects every TLV, descending
// into constructed ones and into OCTET STRINGs whose content is itself DER (PKCS#12 nests
// its safes that way). Indefinite lengths are not descended into.
void collect_tlvs(const Bytes& data, std::size_t from, std::size_t to, int depth, std::vector<Tlv>& out,
                  std::vector<std::size_t>* ends = nullptr) {
    std::size_t at = from;
    while (at + 2 <= to && depth < 24) {
        Tlv tlv;
        tlv.start = at;
        const std::uint8_t tag = data[at];
        if ((tag & 0x1f) == 0x1f) return;  // multi-byte tags do not occur in these files
        tlv.constructed = (tag & 0x20) != 0;
        tlv.length_at = at + 1;
        const std::uint8_t first = data[tlv.length_at];
        std::size_t length = 0;
        if (first < 0x80) {
            tlv.length_size = 1;
            length = first;
        } else {
            const std::size_t count = first & 0x7f;
            if (count == 0 || count > 4 || tlv.length_at + 1 + count > to) return;  // indefinite or odd
            tlv.length_size = 1 + count;
            for (std::size_t i = 0; i < count; ++i) length = (length << 8) | data[tlv.length_at + 1 + i];
        }
        tlv.content_at = tlv.length_at + tlv.length_size;
        if (tlv.content_at + length > to) return;
        tlv.content_size = length;
        const std::size_t index = out.size();
        out.push_back(tlv);
        const std::size_t end = tlv.content_at + length;
        std::vector<std::size_t> children;
        if (tlv.constructed || (tag == 0x04 && length >= 2 && (data[tlv.content_at] & 0x20) != 0))
            collect_tlvs(data, tlv.content_at, end, depth + 1, out, &children);
        out[index].children_ends = std::move(children);
        if (ends != nullptr) ends->push_back(end);
        at = end;
    }
}

Bytes encode_length(std::size_t length) {
    if (length < 0x80) return {static_cast<std::uint8_t>(length)};
    Bytes digits;
    for (std::size_t n = length; n != 0; n >>= 8) digits.insert(digits.begin(), static_cast<std::uint8_t>(n & 0xff));
    digits.insert(digits.begin(), static_cast<std::uint8_t>(0x80 | digits.size()));
    return digits;
}

Bytes with_length_bytes(const Bytes& data, const Tlv& tlv, const Bytes& length_bytes) {
    Bytes out(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(tlv.length_at));
    out.insert(out.end(), length_bytes.begin(), length_bytes.end());
    out.insert(out.end(), data.begin() + static_cast<std::ptrdiff_t>(tlv.content_at), data.end());
    return out;
}

// Evenly spread positions in [0, size), about `count` of them, plus all of the first and
// last `edge` bytes (the outer headers and the MacData).
std::vector<std::size_t> positions(std::size_t size, std::size_t count, std::size_t edge) {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < std::min(edge, size); ++i) out.push_back(i);
    for (std::size_t i = size > edge ? size - edge : 0; i < size; ++i) out.push_back(i);
    const std::size_t stride = std::max<std::size_t>(1, size / std::max<std::size_t>(1, count));
    for (std::size_t i = edge; i + edge < size; i += stride) out.push_back(i);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::vector<Mutant> make_mutants(const Bytes& original) {
    std::vector<Mutant> out;
    const std::size_t size = original.size();
    // Bit flips.
    for (std::size_t at : positions(size, 500, 48)) {
        Mutant m{"flip bit " + std::to_string(at % 8) + " of byte " + std::to_string(at), original};
        m.data[at] ^= static_cast<std::uint8_t>(1u << (at % 8));
        out.push_back(std::move(m));
    }
    // Whole bytes set to 0x00 and 0xff.
    for (std::size_t at : positions(size, 100, 8)) {
        for (std::uint8_t value : {std::uint8_t{0x00}, std::uint8_t{0xff}}) {
            if (original[at] == value) continue;
            Mutant m{"byte " + std::to_string(at) + " := " + std::to_string(value), original};
            m.data[at] = value;
            out.push_back(std::move(m));
        }
    }
    // Truncations.
    for (std::size_t length : positions(size, 150, 40)) {
        out.push_back({"truncated to " + std::to_string(length) + " bytes",
                       Bytes(original.begin(), original.begin() + static_cast<std::ptrdiff_t>(length))});
    }
    // Inserted bytes.
    for (std::size_t at : positions(size, 120, 6)) {
        Mutant zero{"0x00 inserted at " + std::to_string(at), original};
        zero.data.insert(zero.data.begin() + static_cast<std::ptrdiff_t>(at), 0x00);
        out.push_back(std::move(zero));
        if (at % 3 == 0) {
            Mutant header{"30 80 inserted at " + std::to_string(at), original};
            header.data.insert(header.data.begin() + static_cast<std::ptrdiff_t>(at), {0x30, 0x80});
            out.push_back(std::move(header));
        }
    }
    // DER length changes, at every header.
    std::vector<Tlv> tlvs;
    collect_tlvs(original, 0, size, 0, tlvs);
    for (const Tlv& tlv : tlvs) {
        const std::size_t length = tlv.content_size;
        const std::string where = "length of the TLV at " + std::to_string(tlv.start);
        std::vector<std::pair<std::string, Bytes>> lengths = {
            {"+1", encode_length(length + 1)},
            {"0", encode_length(0)},
            {"indefinite", {0x80}},
            {"0x7fffffff", {0x84, 0x7f, 0xff, 0xff, 0xff}},
            {"0xffffffff", {0x84, 0xff, 0xff, 0xff, 0xff}},
            {"9 length bytes", {0x89, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}},
            {"non-minimal", {0x82, static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length & 0xff)}},
        };
        if (length > 0) lengths.push_back({"-1", encode_length(length - 1)});
        // Dropping the last child of a constructed TLV. Not for the PFX itself, where that
        // strips the MAC: see MacCannotBeStrippedOff.
        if (tlv.children_ends.size() >= 2 && tlv.start != 0)
            lengths.push_back({"without its last element",
                               encode_length(tlv.children_ends[tlv.children_ends.size() - 2] - tlv.content_at)});
        for (const auto& [name, bytes] : lengths) {
            if (name == "non-minimal" && length > 0xffff) continue;
            out.push_back({where + " " + name, with_length_bytes(original, tlv, bytes)});
        }
    }
    return out;
}

// Mutants that get past the reader must still be what the original was.
struct Expected {
    std::vector<Bytes> keys;   // DER PrivateKeyInfo, in order
    std::vector<Bytes> certs;  // DER certificates, in order
};

template <typename T, int (*Encode)(const T*, unsigned char**)>
Bytes der_of(const T* value) {
    unsigned char* der = nullptr;
    const int length = Encode(value, &der);
    if (length <= 0) throw std::runtime_error("DER encoding failed");
    Bytes out(der, der + length);
    OPENSSL_free(der);
    return out;
}

// Reads `data` completely: parse, MAC, every key decrypted. Throws what the reader throws.
Expected read_completely(const Bytes& data, const SecretBytes& password, const pkcs12::Limits& limits,
                         bool* mac_present = nullptr) {
    pkcs12::Reader reader(data, password, limits);
    Expected out;
    for (const auto& key : reader.contents().keys) {
        ossl::P8Info info = reader.decrypt_key(key);
        out.keys.push_back(der_of<PKCS8_PRIV_KEY_INFO, i2d_PKCS8_PRIV_KEY_INFO>(info.get()));
    }
    for (const auto& cert : reader.contents().certificates)
        out.certs.push_back(der_of<X509, i2d_X509>(cert.certificate.get()));
    if (mac_present != nullptr) *mac_present = reader.contents().mac.present;
    return out;
}

struct Outcome {
    std::size_t bad_password = 0, bad_input = 0, read = 0;
};

// Iterations of a mutated field are capped far below the default, so that no mutant can
// take seconds; refusing them is bad_input like any other over-the-limit file.
pkcs12::Limits mutation_limits() {
    pkcs12::Limits limits;
    limits.max_iterations = 100'000;
    return limits;
}

Outcome check_mutants(const Bytes& original, const std::string& password_text, const std::vector<Mutant>& mutants) {
    const SecretBytes password = SecretBytes::from_text(password_text);
    const pkcs12::Limits limits = mutation_limits();
    bool original_has_mac = false;
    const Expected expected = read_completely(original, password, limits, &original_has_mac);
    EXPECT_TRUE(original_has_mac);
    EXPECT_FALSE(expected.keys.empty());
    Outcome outcome;
    for (const Mutant& mutant : mutants) {
        // A hang detector, not a benchmark: with the iteration cap above no mutant can
        // make the reader work for long, even under the sanitizers.
        const auto started = std::chrono::steady_clock::now();
        struct Deadline {
            const Mutant& mutant;
            std::chrono::steady_clock::time_point started;
            ~Deadline() {
                EXPECT_LT(std::chrono::steady_clock::now() - started, kTimeBound)
                    << mutant.what << ": the reader took too long";
            }
        } deadline{mutant, started};
        try {
            bool mac_present = false;
            const Expected got = read_completely(mutant.data, password, limits, &mac_present);
            ++outcome.read;
            EXPECT_TRUE(mac_present) << mutant.what << ": read WITHOUT a MAC: the mutation removed the integrity check "
                                                        "and the reader accepted the file";
            EXPECT_EQ(got.keys, expected.keys) << mutant.what << ": read, but the keys differ";
            EXPECT_EQ(got.certs, expected.certs) << mutant.what << ": read, but the certificates differ";
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::bad_password) ++outcome.bad_password;
            else if (e.kind() == ErrorKind::bad_input) ++outcome.bad_input;
            else ADD_FAILURE() << mutant.what << ": Error with exit code " << static_cast<int>(e.kind()) << ": "
                               << e.what();
        } catch (const std::exception& e) {
            ADD_FAILURE() << mutant.what << ": an exception that is not p11vault::Error: " << e.what();
        }
    }
    return outcome;
}

struct Source {
    std::string name;
    Bytes data;
    std::string password;
};

// The three files. The backups come from a throw-away SoftHSM token with one EC key and
// its certificate (small files, so a few thousand mutants stay fast), written by p11vault.
class MutationTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        token_ = new TestToken(Backend::softhsm, "mutation");
        {
            auto session = token_->open_session();
            certify(*session, generate_ec(*session, "P-256", {0x31}, "mutation-ec"));
        }
        for (const char* profile : {"modern", "legacy"}) {
            const std::string path = token_->dir() + "/" + profile + ".p12";
            const RunResult made = backup(*token_, path, {"--all", "--profile", profile});
            if (made.exit_code != 0) throw std::runtime_error(std::string("backup failed: ") + made.err);
            sources_->push_back({std::string("p11vault-backup-") + profile, read_bytes(path), kTestPassword});
        }
        sources_->push_back({"windows10-export-3des",
                             read_bytes(std::string(P11VAULT_CORPUS_DIR) + "/windows10-export-3des.p12"), "1"});
    }
    static void TearDownTestSuite() {
        delete token_;
        token_ = nullptr;
        sources_->clear();
    }
    static const Source& source(const std::string& name) {
        for (const auto& s : *sources_)
            if (s.name == name) return s;
        throw std::runtime_error("no source " + name);
    }

    static TestToken* token_;
    static std::vector<Source>* sources_;
};
TestToken* MutationTest::token_ = nullptr;
std::vector<Source>* MutationTest::sources_ = new std::vector<Source>;

// Every kSampleEvery-th mutant (mutants of one kind are adjacent, so every kind stays in).
std::vector<Mutant> sample(std::vector<Mutant> mutants) {
    std::vector<Mutant> out;
    for (std::size_t i = 0; i < mutants.size(); i += kSampleEvery) out.push_back(std::move(mutants[i]));
    return out;
}

void expect_mutants_refused(const Source& source) {
    std::vector<Mutant> mutants = make_mutants(source.data);
    ASSERT_GE(mutants.size(), 800u) << "too few mutants of " << source.name;
    mutants = sample(std::move(mutants));
    const Outcome outcome = check_mutants(source.data, source.password, mutants);
    ::testing::Test::RecordProperty("mutants", static_cast<int>(mutants.size()));
    ::testing::Test::RecordProperty("bad_password", static_cast<int>(outcome.bad_password));
    ::testing::Test::RecordProperty("bad_input", static_cast<int>(outcome.bad_input));
    ::testing::Test::RecordProperty("read", static_cast<int>(outcome.read));
    // Nearly every mutant must be refused: a file with a MAC has almost no byte that may change.
    EXPECT_LT(outcome.read, mutants.size() / 20) << outcome.read << " of " << mutants.size() << " mutants were read";
    EXPECT_GT(outcome.bad_password, 0u);
    EXPECT_GT(outcome.bad_input, 0u);
}

TEST_F(MutationTest, ModernBackupMutantsAreRefused) { expect_mutants_refused(source("p11vault-backup-modern")); }
TEST_F(MutationTest, LegacyBackupMutantsAreRefused) { expect_mutants_refused(source("p11vault-backup-legacy")); }
TEST_F(MutationTest, WindowsExportMutantsAreRefused) { expect_mutants_refused(source("windows10-export-3des")); }

// The two ways to cut the MacData off a file without touching a byte of the
// authenticated content: shorten the PFX's definite length so that the MacData becomes
// bytes after the PFX, or make the length indefinite and put the end-of-contents octets
// 00 00 before the MacData. Either way the reader must not read the file as one that
// simply has no MAC: someone who can change a backup could then also change what it holds
// (the content of a file without MAC is not authenticated at all).
std::vector<Mutant> mac_stripping_mutants(const Bytes& original) {
    std::vector<Tlv> tlvs;
    collect_tlvs(original, 0, original.size(), 0, tlvs);
    if (tlvs.empty() || tlvs[0].children_ends.size() != 3) throw std::runtime_error("not a PFX with MacData");
    const Tlv& pfx = tlvs[0];
    const std::size_t auth_safe_end = pfx.children_ends[1];
    std::vector<Mutant> out;
    out.push_back({"PFX length shortened to end before the MacData",
                   with_length_bytes(original, pfx, encode_length(auth_safe_end - pfx.content_at))});
    Mutant indefinite{"PFX length indefinite, end-of-contents before the MacData", original};
    indefinite.data.insert(indefinite.data.begin() + static_cast<std::ptrdiff_t>(auth_safe_end), {0x00, 0x00});
    indefinite.data = with_length_bytes(indefinite.data, pfx, {0x80});
    out.push_back(std::move(indefinite));
    return out;
}

TEST_F(MutationTest, MacCannotBeStrippedOff) {
    for (const auto& source : *sources_) {
        const SecretBytes password = SecretBytes::from_text(source.password);
        for (const Mutant& mutant : mac_stripping_mutants(source.data)) {
            SCOPED_TRACE(source.name + ": " + mutant.what);
            bool mac_present = true;
            try {
                (void)read_completely(mutant.data, password, mutation_limits(), &mac_present);
                ADD_FAILURE() << "the reader read the file as one without a MAC (mac present: " << mac_present
                              << "): the bytes after the end of the PFX must be refused";
            } catch (const Error& e) {
                EXPECT_TRUE(e.kind() == ErrorKind::bad_input || e.kind() == ErrorKind::bad_password) << e.what();
            }
            const std::string path = token_->dir() + "/stripped.p12";
            write_bytes(path, mutant.data);
            RunOptions options;
            options.env[kPasswordVariable] = source.password;
            const RunResult result =
                run_p11vault({"verify", "--in", path, "--password", std::string("env:") + kPasswordVariable}, options);
            EXPECT_TRUE(result.exit_code == 3 || result.exit_code == 4)
                << "p11vault verify: exit " << result.exit_code << "\n" << result.err;
        }
    }
}

bool refused_in_process(const Mutant& mutant, const std::string& password) {
    try {
        (void)read_completely(mutant.data, SecretBytes::from_text(password), mutation_limits());
        return false;
    } catch (const Error&) {
        return true;
    }
}

// About fifty mutants, spread over all three files and all kinds of mutation, that the
// reader refuses, through the real binary.
TEST_F(MutationTest, VerifyRefusesMutantsWithOneErrorLine) {
    const std::string dir = token_->dir();
    std::size_t checked = 0;
    for (const auto& source : *sources_) {
        const std::vector<Mutant> mutants = make_mutants(source.data);
        const std::size_t wanted = 17;
        const std::size_t stride = mutants.size() / (2 * wanted);
        std::size_t picked = 0;
        for (std::size_t i = 0; i < mutants.size() && picked < wanted; i += stride) {
            const Mutant& mutant = mutants[i];
            if (!refused_in_process(mutant, source.password)) continue;  // one of the few that still verify
            ++picked;
            SCOPED_TRACE(source.name + ": " + mutant.what);
            const std::string path = dir + "/mutant.p12";
            write_bytes(path, mutant.data);
            RunOptions options;
            options.env[kPasswordVariable] = source.password;
            const RunResult result = run_p11vault({"verify", "--in", path, "--password",
                                                   std::string("env:") + kPasswordVariable, "--max-iterations",
                                                   std::to_string(mutation_limits().max_iterations)},
                                                  options);
            EXPECT_TRUE(result.exit_code == 3 || result.exit_code == 4) << "exit " << result.exit_code << "\n" << result.err;
            EXPECT_LT(result.exit_code, 128);
            const auto lines = result.err_lines();
            ASSERT_EQ(lines.size(), 1u) << result.err;
            EXPECT_EQ(lines[0].rfind("p11vault: error: ", 0), 0u) << lines[0];
        }
        EXPECT_EQ(picked, wanted) << source.name;
        checked += picked;
    }
    EXPECT_GE(checked, 50u);
}

}  // namespace
}  // namespace p11vault::testing
