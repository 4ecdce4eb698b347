// SPDX-License-Identifier: Apache-2.0
// Every producer in (issue 7): one test per row of the PKCS#12 corpus manifest
// (tests/corpus/pkcs12/MANIFEST.tsv), read when the test binary starts, so rows added
// to the manifest are picked up without touching this file.
//
// - `ok` / `ok-quirk` rows: `p11vault verify --json` exits 0 with exactly the manifest's
//   key and certificate counts (`?` skips a count); quirk rows name the quirk they needed.
//   Rows with keys are restored into a fresh SoftHSM token with --skip-unsupported: every
//   key whose type SoftHSM can hold is restored, the token grows by exactly the restored
//   objects, and every restored private key signs on the token (checked on the host with
//   the public key the file holds).
// - `reject` rows: verify and restore exit 3 or 4 with exactly one `p11vault: error:` line,
//   never a crash, and the token is unchanged.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

constexpr const char* kPasswordVariable = "P11VAULT_TEST_PW";
constexpr const char* kPinVariable = "P11VAULT_TEST_PIN";

struct Row {
    std::string file;
    std::string producer;
    std::string password_source;
    std::string keys;  // a number or "?"
    std::string certs;
    std::string key_types;
    std::string expect;  // ok, ok-quirk, reject
    std::string notes;
};

void PrintTo(const Row& row, std::ostream* out) { *out << row.file << " (" << row.expect << ")"; }

std::string corpus_dir() { return P11VAULT_CORPUS_DIR; }

std::vector<std::string> split_tabs(const std::string& line) {
    std::vector<std::string> fields;
    std::string field;
    std::istringstream in(line);
    while (std::getline(in, field, '\t')) fields.push_back(field);
    return fields;
}

// The manifest, by column name (the header row), so added columns do not matter.
std::vector<Row> read_manifest() {
    std::ifstream in(corpus_dir() + "/MANIFEST.tsv");
    if (!in) return {};
    std::string line;
    if (!std::getline(in, line)) return {};
    const auto header = split_tabs(line);
    std::map<std::string, std::size_t> column;
    for (std::size_t i = 0; i < header.size(); ++i) column[header[i]] = i;
    for (const char* name : {"file", "producer", "password_source", "keys", "certs", "key_types", "expect"})
        if (!column.count(name)) throw std::runtime_error(std::string("MANIFEST.tsv has no column ") + name);
    std::vector<Row> rows;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        const auto fields = split_tabs(line);
        auto get = [&](const char* name) {
            auto it = column.find(name);
            return it != column.end() && it->second < fields.size() ? fields[it->second] : std::string();
        };
        rows.push_back({get("file"), get("producer"), get("password_source"), get("keys"), get("certs"),
                        get("key_types"), get("expect"), get("notes")});
    }
    return rows;
}

const std::vector<Row>& manifest() {
    static const std::vector<Row> rows = read_manifest();
    return rows;
}

bool is_reject(const Row& row) { return row.expect == "reject"; }

// The password for $P11VAULT_TEST_PW; false for sources the test cannot express.
bool password_of(const Row& row, std::string& password) {
    if (row.password_source.rfind("pass:", 0) == 0) {
        password = row.password_source.substr(5);
        return true;
    }
    if (row.password_source == "empty" || row.password_source == "none") {
        password.clear();
        return true;
    }
    return false;  // hex: (raw bytes) and anything new
}

// A manifest key type SoftHSM 2 can hold and sign with (as CKK_RSA, CKK_EC or
// CKK_EC_EDWARDS). RSA-PSS keys are CKK_RSA keys on a token.
bool softhsm_can_hold(const std::string& type) {
    // SoftHSM's CKM_DSA takes 512 to 1024 bits.
    static const std::regex supported("^(RSA-[0-9]+|RSA-PSS-[0-9]+|EC-[A-Za-z0-9]+|Ed25519|Ed448|DSA-(512|768|1024))$");
    return std::regex_match(type, supported);
}

std::vector<std::string> key_types_of(const Row& row) {
    std::vector<std::string> types;
    std::string type;
    for (char c : row.key_types + ",") {
        if (c == ',' || c == ' ' || c == '+' || c == ';') {
            if (!type.empty() && type != "-" && type != "?") types.push_back(type);
            type.clear();
        } else {
            type += c;
        }
    }
    return types;
}

std::string hex_of(const Bytes& bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

Bytes bytes_of_hex(const std::string& text) {
    Bytes out;
    for (std::size_t i = 0; i + 1 < text.size(); i += 2) out.push_back(static_cast<std::uint8_t>(std::stoi(text.substr(i, 2), nullptr, 16)));
    return out;
}

std::string plain_hex(const std::string& text) {
    std::string out;
    for (char c : text)
        if (std::isxdigit(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

void expect_clean_refusal(const RunResult& result, const std::string& what) {
    EXPECT_LT(result.exit_code, 128) << what << " crashed (signal " << result.exit_code - 128 << ")";
    EXPECT_TRUE(result.exit_code == 3 || result.exit_code == 4)
        << what << " exit " << result.exit_code << "\n" << result.out << result.err;
    int errors = 0;
    for (const auto& line : result.err_lines())
        if (line.rfind("p11vault: error:", 0) == 0) ++errors;
    EXPECT_EQ(errors, 1) << what << " stderr:\n" << result.err;
}

class Corpus : public ::testing::TestWithParam<Row> {
protected:
    void SetUp() override {
        if (!password_of(GetParam(), password_))
            GTEST_SKIP() << "password source " << GetParam().password_source << " cannot be given through env:";
        path_ = corpus_dir() + "/" + GetParam().file;
    }

    RunResult p11vault(std::vector<std::string> args, RunOptions options = {}) const {
        options.env[kPasswordVariable] = password_;
        args.insert(args.end(), {"--password", std::string("env:") + kPasswordVariable});
        return run_p11vault(args, options);
    }

    RunResult restore(const TestToken& token, const std::vector<std::string>& extra) const {
        std::vector<std::string> args = {"restore", "--in", path_};
        const auto token_args = token.cli_token_args();
        args.insert(args.end(), token_args.begin(), token_args.end());
        args.insert(args.end(), {"--pin", std::string("env:") + kPinVariable});
        args.insert(args.end(), extra.begin(), extra.end());
        RunOptions options;
        add_env_entries(options, token.env_for_child());
        options.env[kPinVariable] = token.user_pin();
        return p11vault(args, options);
    }

    std::string password_;
    std::string path_;
};

TEST_P(Corpus, Verify) {
    const Row& row = GetParam();
    const RunResult result = p11vault({"verify", "--in", path_, "--json"});
    if (is_reject(row)) {
        expect_clean_refusal(result, "verify");
        return;
    }
    ASSERT_EQ(result.exit_code, 0) << row.file << " (" << row.producer << ")\n" << result.err;
    json document;
    ASSERT_NO_THROW(document = json::parse(result.out)) << result.out;
    if (row.keys != "?") {
        EXPECT_EQ(document.at("keys").size(), std::stoul(row.keys)) << document.dump(2);
    }
    if (row.certs != "?") {
        EXPECT_EQ(document.at("certificates").size(), std::stoul(row.certs)) << document.dump(2);
    }
    if (row.expect == "ok-quirk") {
        EXPECT_FALSE(document.at("quirks").empty()) << "an ok-quirk file read without naming a quirk";
    } else {
        EXPECT_TRUE(document.at("quirks").empty()) << "a standard file needed quirks: " << document.at("quirks").dump();
    }
    // A key type the crypto library cannot parse is still named (by OID at least).
    for (const auto& key : document.at("keys")) EXPECT_FALSE(key.value("type", "").empty()) << key.dump();
}

TEST_P(Corpus, RestoreIntoSoftHsm) {
    const Row& row = GetParam();
    TestToken token(Backend::softhsm);
    {
        // Something already on the token, so "unchanged" and "grew by" mean something.
        auto session = token.open_session();
        generate_ec(*session, "P-256", {0xee, 0xee}, "already here");
    }
    const auto before = token.objects();

    if (is_reject(row)) {
        expect_clean_refusal(restore(token, {"--skip-unsupported"}), "restore --skip-unsupported");
        expect_clean_refusal(restore(token, {}), "restore");
        expect_clean_refusal(restore(token, {"--dry-run"}), "restore --dry-run");
        EXPECT_EQ(token.objects(), before) << "a refused restore changed the token";
        return;
    }
    const RunResult result = restore(token, {"--skip-unsupported", "--json"});
    ASSERT_LT(result.exit_code, 128) << "restore crashed (signal " << result.exit_code - 128 << ")\n" << result.err;
    ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
    json document;
    ASSERT_NO_THROW(document = json::parse(result.out)) << result.out;
    const json& keys = document.at("keys");
    if (row.keys != "?") {
        ASSERT_EQ(keys.size(), std::stoul(row.keys)) << document.dump(2);
    }

    // Keys of types SoftHSM can hold must be restored; the others skipped, never half-done.
    const auto types = key_types_of(row);
    const bool all_holdable =
        !types.empty() && std::all_of(types.begin(), types.end(), [](const auto& t) { return softhsm_can_hold(t); });
    std::size_t restored = 0;
    for (const auto& key : keys) {
        const std::string status = key.at("status");
        if (all_holdable) {
            EXPECT_EQ(status, "restored") << row.key_types << ": " << key.dump(2);
        }
        EXPECT_TRUE(status == "restored" || status == "skipped-unsupported") << key.dump(2);
        if (status == "restored") ++restored;
    }

    // The token grew by exactly a private and a public key per restored key, and the
    // certificates the run says it wrote.
    const auto after = token.objects();
    const std::size_t certificates = document.at("certificates_written").get<std::size_t>();
    EXPECT_EQ(after.size(), before.size() + 2 * restored + certificates);
    for (const auto& object : before) EXPECT_TRUE(std::binary_search(after.begin(), after.end(), object));
    std::size_t certificate_objects = 0;
    for (const auto& object : after)
        if (object.object_class == CKO_CERTIFICATE) ++certificate_objects;
    EXPECT_EQ(certificate_objects, certificates);

    // Every restored private key signs on the token; the signature verifies with the
    // restored public key, whose SPKI is the one the file holds.
    auto session = token.open_session();
    for (const auto& key : keys) {
        if (key.at("status") != "restored") continue;
        const Bytes id = bytes_of_hex(plain_hex(key.at("id").get<std::string>()));
        SCOPED_TRACE("key id=" + hex_of(id) + " " + key.value("type", ""));
        pkcs11::AttributeTemplate private_match;
        private_match.add_class(CKO_PRIVATE_KEY).add_bytes(CKA_ID, id);
        const auto privates = session->find(private_match);
        ASSERT_GE(privates.size(), 1u);
        pkcs11::AttributeTemplate public_match;
        public_match.add_class(CKO_PUBLIC_KEY).add_bytes(CKA_ID, id);
        const auto publics = session->find(public_match);
        ASSERT_GE(publics.size(), 1u);
        EXPECT_EQ(session->get_bool(privates.front(), CKA_SENSITIVE), true);
        EXPECT_EQ(session->get_bool(privates.front(), CKA_EXTRACTABLE), false);
        const CK_KEY_TYPE type = session->get_ulong(privates.front(), CKA_KEY_TYPE).value_or(CKK_RSA);
        PkeyPtr public_key = public_key_from_token(*session, publics.front());
        ASSERT_TRUE(public_key);
        if (!key.at("spki_sha256").is_null() && key.value("type", "").rfind("RSA-PSS", 0) != 0) {
            const Bytes spki = spki_der(public_key.get());
            unsigned char digest[32];
            ASSERT_EQ(EVP_Digest(spki.data(), spki.size(), digest, nullptr, EVP_sha256(), nullptr), 1);
            EXPECT_EQ(hex_of(Bytes(digest, digest + 32)), plain_hex(key.at("spki_sha256").get<std::string>()));
        }
        const std::string text = "corpus restore signing proof: " + GetParam().file;
        const std::vector<std::uint8_t> message(text.begin(), text.end());
        Bytes signature;
        ASSERT_NO_THROW(signature = sign_for_openssl(*session, privates.front(), type, message));
        EXPECT_TRUE(openssl_verify(public_key.get(), message, signature));
    }
}

std::string test_name(const ::testing::TestParamInfo<Row>& info) {
    std::string name = info.param.file;
    if (auto dot = name.rfind('.'); dot != std::string::npos) name.resize(dot);
    for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return name.empty() ? "row" + std::to_string(info.index) : name;
}

INSTANTIATE_TEST_SUITE_P(Manifest, Corpus, ::testing::ValuesIn(manifest()), test_name);

TEST(CorpusManifest, IsReadableAndEveryRowNamesAFileThatExists) {
    ASSERT_FALSE(manifest().empty()) << "no rows in " << corpus_dir() << "/MANIFEST.tsv";
    std::set<std::string> names;
    for (const Row& row : manifest()) {
        EXPECT_TRUE(names.insert(row.file).second) << "duplicate row " << row.file;
        std::ifstream file(corpus_dir() + "/" + row.file, std::ios::binary);
        EXPECT_TRUE(file.good()) << row.file << " is in the manifest but not in the corpus";
        EXPECT_TRUE(row.expect == "ok" || row.expect == "ok-quirk" || row.expect == "reject") << row.file;
        EXPECT_TRUE(row.keys == "?" || std::regex_match(row.keys, std::regex("[0-9]+"))) << row.file;
        EXPECT_TRUE(row.certs == "?" || std::regex_match(row.certs, std::regex("[0-9]+"))) << row.file;
    }
}

}  // namespace
}  // namespace p11vault::testing
