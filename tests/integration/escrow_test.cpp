// SPDX-License-Identifier: Apache-2.0
// Backups escrowed to key recovery officers (issue 22): `backup --recipient` writes a CMS
// AuthEnvelopedData that `openssl cms -decrypt` opens with an officer's key file by the
// recipe README.md and docs/escrow.md show (read from them), and `restore`/`verify
// --recipient-key` open on the officer's token; M-of-N files (--recipient-threshold) open
// with M officers' tokens or their escrow-share files, and not with fewer.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/escrow_fixture.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

// The recipe a document shows for opening a backup with openssl alone, as it is written
// there: the command from its line starting "openssl cms -decrypt" through the backslash
// continuations, with the document's example names of the backup, the officer's key and
// certificate (each once) replaced by `file` and the officer's files. Empty (and a test
// failure) when the document has no such command or not each name once.
std::string documented_recipe(const std::string& document, const std::string& backup_name,
                              const std::string& key_name, const std::string& cert_name, const std::string& file,
                              const Officer& officer) {
    std::istringstream in(read_text(std::string(P11VAULT_SOURCE_DIR) + "/" + document));
    std::string command;
    for (std::string line; std::getline(in, line);) {
        const auto start = line.find_first_not_of(' ');
        if (command.empty() && (start == std::string::npos || line.compare(start, 20, "openssl cms -decrypt") != 0))
            continue;
        const bool continued = !line.empty() && line.back() == '\\';
        command += line.substr(start, line.size() - start - (continued ? 1 : 0)) + " ";
        if (!continued) break;
    }
    const std::map<std::string, std::string> replacements = {
        {backup_name, file}, {key_name, officer.key_path}, {cert_name, officer.cert_path}};
    std::map<std::string, int> replaced;
    std::istringstream words(command);
    std::string out;
    for (std::string word; words >> word;) {
        if (const auto at = replacements.find(word); at != replacements.end()) {
            ++replaced[word];
            word = "'" + at->second + "'";
        }
        out += word + " ";
    }
    const bool each_once = replaced.size() == replacements.size() &&
                           std::all_of(replaced.begin(), replaced.end(), [](const auto& r) { return r.second == 1; });
    if (!each_once || out.find("| openssl pkcs12 ") == std::string::npos) {
        ADD_FAILURE() << document << " shows no openssl recipe naming " << backup_name << ", " << key_name << " and "
                      << cert_name << " once each: " << command;
        return "";
    }
    return out;
}

// The recipe of README.md and of docs/escrow.md, run with the officer's key file.
std::vector<std::pair<std::string, RunResult>> openssl_recipes(const std::string& file, const Officer& officer) {
    std::vector<std::pair<std::string, RunResult>> results;
    for (const auto& [document, command] :
         std::vector<std::pair<std::string, std::string>>{
             {"README.md", documented_recipe("README.md", "ca.p7m", "officer1.key", "officer1.pem", file, officer)},
             {"docs/escrow.md",
              documented_recipe("docs/escrow.md", "BACKUP.p7m", "officer.key", "officer.pem", file, officer)}}) {
        if (command.empty()) continue;
        results.emplace_back(document, run_tool({"bash", "-o", "pipefail", "-c", command}));
    }
    return results;
}

void flip_byte(const std::string& file, std::size_t from_end) {
    std::string data = read_text(file);
    data[data.size() - from_end] = static_cast<char>(data[data.size() - from_end] ^ 0x01);
    write_text(file, data);
}

class EscrowOneOfTwo : public EscrowTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(EscrowOneOfTwo, OpensWithOpensslRecipeAndWithEitherOfficersToken) {
    const Officer first = make_officer("officer1", GetParam());
    const Officer second = make_officer("officer2", GetParam());
    const std::string file = path("escrowed.p7m");
    const std::string records = path("ceremony.jsonl");
    const RunResult made = backup_to(file, {&first, &second}, {"--json", "--record", records});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    const json report = stdout_json(made);
    ASSERT_EQ(report.at("escrow").at("recipients").size(), 2u) << report.dump(2);
    EXPECT_EQ(report.at("escrow").at("threshold"), 1);
    EXPECT_EQ(file_mode(file), 0600u);
    // The record names the recipients by certificate fingerprint.
    const json backup_record = last_record(records).at("details").at("escrow");
    EXPECT_EQ(backup_record.at("format"), "cms-auth-enveloped-data");
    EXPECT_EQ(backup_record.at("recipients")[0].at("certificate_sha256"), first.certificate_sha256());
    EXPECT_EQ(backup_record.at("recipients")[1].at("certificate_sha256"), second.certificate_sha256());

    for (const Officer* officer : {&first, &second}) {
        const auto recipes = openssl_recipes(file, *officer);
        ASSERT_EQ(recipes.size(), 2u);
        for (const auto& [document, opened] : recipes) {
            ASSERT_EQ(opened.exit_code, 0) << document << "'s recipe, " << officer->name << ": " << opened.err;
            EXPECT_NE(opened.out.find("BEGIN PRIVATE KEY"), std::string::npos) << document << ": " << opened.out;
            EXPECT_NE(opened.out.find("friendlyName: escrowed signer"), std::string::npos)
                << document << ": " << opened.out;
        }
    }

    const auto before = target_.objects();
    const RunResult verified = restore_with(file, {&second}, {"--json"}, "verify");
    ASSERT_EQ(verified.exit_code, 0) << verified.err;
    const json verification = stdout_json(verified);
    EXPECT_EQ(verification.at("keys").size(), 1u);
    EXPECT_EQ(verification.at("escrow").at("content_opened"), true);
    ASSERT_EQ(verification.at("escrow").at("opened_by").size(), 1u);
    EXPECT_EQ(target_.objects(), before);

    const RunResult restored = restore_with(file, {&first}, {"--record", records});
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    expect_key_restored();
    // The restore's record says which officer opened it.
    const json restore_record = last_record(records);
    EXPECT_EQ(restore_record.at("command"), "restore");
    EXPECT_EQ(restore_record.at("details").at("escrow").at("opened_by"), json::array({first.certificate_sha256()}));
}

INSTANTIATE_TEST_SUITE_P(Officers, EscrowOneOfTwo, ::testing::Values("RSA", "EC"),
                         [](const auto& info) { return info.param; });

TEST_F(EscrowTest, AKeyThatIsNoRecipientFailsWithExit3AndTheTargetStaysAsItWas) {
    const Officer recipient = make_officer("officer1", "RSA");
    const Officer outsider = make_officer("outsider", "RSA");
    const Officer ec_outsider = make_officer("ecoutsider", "EC");
    const std::string file = path("escrowed.p7m");
    ASSERT_EQ(backup_to(file, {&recipient}).exit_code, 0);
    const auto before = target_.objects();
    for (const Officer* wrong : {&outsider, &ec_outsider}) {
        const RunResult result = restore_with(file, {wrong});
        EXPECT_EQ(result.exit_code, 3) << result.err;
        EXPECT_NE(result.err.find("is not one of the file's recovery officers"), std::string::npos) << result.err;
    }
    EXPECT_EQ(target_.objects(), before);
}

TEST_F(EscrowTest, AnAlteredFileFailsWithExit4) {
    const Officer officer = make_officer("officer1", "EC");
    const std::string file = path("escrowed.p7m");
    ASSERT_EQ(backup_to(file, {&officer}).exit_code, 0);
    // The file ends with the GCM tag, an OCTET STRING of 16 bytes (04 10 ...): the byte
    // before it is the last byte of the ciphertext.
    ASSERT_EQ(read_text(file)[read_text(file).size() - 18], '\x04');
    flip_byte(file, 19);
    const auto before = target_.objects();
    const RunResult result = restore_with(file, {&officer});
    EXPECT_EQ(result.exit_code, 4) << result.err;
    EXPECT_NE(result.err.find("the file was altered"), std::string::npos) << result.err;
    EXPECT_EQ(target_.objects(), before);
}

TEST_F(EscrowTest, VerifyWithoutAKeyListsTheRecipientsAndSaysItDidNotOpenTheContent) {
    const Officer rsa = make_officer("officer1", "RSA", /*on_token=*/false);
    const Officer ec = make_officer("officer2", "EC", /*on_token=*/false);
    const std::string file = path("escrowed.p7m");
    ASSERT_EQ(backup_to(file, {&rsa, &ec}).exit_code, 0);
    const RunResult text = p11vault({"verify", "--in", file});
    ASSERT_EQ(text.exit_code, 0) << text.err;
    EXPECT_NE(text.out.find("any 1 of 2 opens it"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("issuer CN=officer1, serial 0x"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("RSAES-OAEP-SHA256"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("ECDH-stdDH-SHA256-KDF"), std::string::npos) << text.out;
    EXPECT_NE(text.err.find("the content was not opened"), std::string::npos) << text.err;

    const RunResult result = p11vault({"verify", "--in", file, "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    const json& escrow = document.at("escrow");
    EXPECT_EQ(escrow.at("format"), "cms-auth-enveloped-data");
    EXPECT_EQ(escrow.at("threshold"), 1);
    EXPECT_EQ(escrow.at("content_opened"), false);
    ASSERT_EQ(escrow.at("recipients").size(), 2u);
    EXPECT_EQ(escrow.at("recipients")[0].at("issuer"), "CN=officer1");
    EXPECT_EQ(escrow.at("recipients")[1].at("algorithm"), "ECDH-stdDH-SHA256-KDF");
}

TEST_F(EscrowTest, RecipientCertificatesAreCheckedAndExcludeAPassword) {
    const Officer signing_only = make_officer("signer", "RSA", false, "digitalSignature");
    const Officer expired = make_officer("expired", "EC", false, nullptr, -60, -1);
    const Officer good = make_officer("officer1", "RSA", false);
    const std::string file = path("escrowed.p7m");

    RunResult result = backup_to(file, {&signing_only});
    EXPECT_EQ(result.exit_code, 6) << result.err;
    EXPECT_NE(result.err.find("does not allow keyEncipherment"), std::string::npos) << result.err;
    result = backup_to(file, {&expired});
    EXPECT_EQ(result.exit_code, 6) << result.err;
    EXPECT_NE(result.err.find("has expired (--recipient-allow-expired"), std::string::npos) << result.err;
    result = backup_to(file, {&good}, {"--password", "env:P11VAULT_TEST_PW"});
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_NE(result.err.find("--password and --recipient exclude each other"), std::string::npos) << result.err;
    result = backup_to(file, {&good}, {"--recipient-threshold", "2"});
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_FALSE(file_exists(file));

    result = backup_to(file, {&expired}, {"--recipient-allow-expired"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_TRUE(file_exists(file));
}

TEST_F(EscrowTest, AnEscrowedFileTakesNoPasswordAndAPkcs12NoRecipientKey) {
    const Officer officer = make_officer("officer1", "RSA");
    const std::string file = path("escrowed.p7m");
    ASSERT_EQ(backup_to(file, {&officer}).exit_code, 0);
    RunResult result = restore_with(file, {}, {"--password", "env:P11VAULT_TEST_PW"});
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_NE(result.err.find("has no password"), std::string::npos) << result.err;
    result = restore_with(file, {});
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_NE(result.err.find("give --recipient-key"), std::string::npos) << result.err;

    const std::string plain = path("plain.p12");
    ASSERT_EQ(backup(source_, plain, {"--all"}).exit_code, 0);
    result = restore_with(plain, {&officer}, {"--password", "env:P11VAULT_TEST_PW"});
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_NE(result.err.find("is not an escrowed file"), std::string::npos) << result.err;
}

// The officer's key is used on its token and never leaves it: through the fault module's
// call log, no C_GetAttributeValue of a private component (CKA_VALUE, CKA_PRIVATE_EXPONENT,
// the primes and CRT values) on the key p11vault decrypted or derived with, and no
// C_WrapKey at all; afterwards the key is still sensitive and not extractable.
class EscrowOfficerKeyUse : public EscrowTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(EscrowOfficerKeyUse, TheOfficersKeyIsUsedOnItsTokenAndNeverReadOrWrapped) {
    const Officer officer = make_officer("officer1", GetParam());
    const std::string file = path("escrowed.p7m");
    ASSERT_EQ(backup_to(file, {&officer}).exit_code, 0);
    const std::string log = path("officer-calls.log");
    const RunResult restored =
        p11vault({"restore", "--module", target_.module_path(), "--token-label", target_.label(), "--pin",
                  "file:" + pin_file_, "--in", file, "--recipient-key", officer.uri(), "--recipient-module",
                  P11VAULT_FAULT_MODULE_PATH, "--recipient-pin", "file:" + pin_file_},
                 {{"P11VAULT_FAULT_MODULE", officer.token->module_path()}, {"P11VAULT_FAULT_LOG", log}});
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    expect_key_restored();

    const std::string used_by = GetParam() == "RSA" ? "C_DecryptInit" : "C_DeriveKey";
    const std::string handle_field = GetParam() == "RSA" ? "key=" : "base=";
    std::string officer_handle;
    std::vector<std::string> lines;
    std::istringstream in(read_text(log));
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
        if (line.find(" " + used_by + " CKR_OK") == std::string::npos) continue;
        const auto at = line.find(handle_field);
        ASSERT_NE(at, std::string::npos) << line;
        const std::string handle = line.substr(at + handle_field.size());
        if (officer_handle.empty()) officer_handle = handle;
        EXPECT_EQ(handle, officer_handle) << "one key was used: " << line;
    }
    ASSERT_FALSE(officer_handle.empty()) << "no successful " << used_by << " in " << read_text(log);
    const std::vector<std::string> private_components = {"0x11", "0x123", "0x124", "0x125", "0x126", "0x127", "0x128"};
    for (const auto& line : lines) {
        EXPECT_EQ(line.find(" C_WrapKey "), std::string::npos) << line;
        if (line.find(" C_GetAttributeValue ") == std::string::npos) continue;
        if (line.find(" object=" + officer_handle + " ") == std::string::npos) continue;
        std::string types = line.substr(line.find("types=") + 6);
        std::istringstream list(types);
        for (std::string type; std::getline(list, type, ',');)
            for (const auto& component : private_components)
                EXPECT_NE(type, component) << "the officer's key was asked for " << type << ": " << line;
    }

    auto session = officer.token->open_session();
    const auto keys = find_objects(*session, CKO_PRIVATE_KEY);
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_EQ(session->get_bool(keys.front(), CKA_SENSITIVE), true);
    EXPECT_EQ(session->get_bool(keys.front(), CKA_EXTRACTABLE), false);
}

INSTANTIATE_TEST_SUITE_P(Officers, EscrowOfficerKeyUse, ::testing::Values("RSA", "EC"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace p11vault::testing
