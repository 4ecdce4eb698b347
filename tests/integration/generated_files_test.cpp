// SPDX-License-Identifier: Apache-2.0
// Files made here by the tools themselves (issue 7, "In"), in the layouts the corpus
// files and the other tests do not make: openssl without a MAC, with the key or the
// certificates unencrypted, with a UTF-8, an empty and a not-UTF-8 password, with a
// three-level chain, with Camellia and ARIA bags and SHA-512/224, SHA-512/256, SHA3-256
// and MD5 MACs; keytool with HmacPBESHA512/256 and /224 MACs; certtool with an EC key. Each file is read by `p11vault verify --json` (counts
// of keys and certificates, the warnings it must give), restored into a fresh SoftHSM
// token, and every restored key signs for the file's certificate; the token grows by
// exactly the file's objects.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

struct Generated {
    std::string name;
    std::string password;
    std::size_t keys = 1;
    std::size_t certificates = 1;
    // A warning `verify` must give ("" for none in particular).
    std::string warning;
    // Makes the file `path` in `dir` with the password in $P11VAULT_TEST_PW.
    std::function<void(const std::string& dir, const std::string& path, const std::string& password)> make;
};

// gtest prints the parameter in test names and failures: the name says it all.
void PrintTo(const Generated& generated, std::ostream* out) { *out << generated.name; }

void tool(const std::vector<std::string>& argv, const std::string& password) {
    const RunResult result = run_tool(argv, password);
    ASSERT_EQ(result.exit_code, 0) << argv[0] << " failed:\n" << result.out << result.err;
}

// `openssl pkcs12 -export` of a new key and a TestCa certificate, with `extra` options.
Generated openssl_case(const std::string& name, const std::string& algorithm, std::vector<std::string> extra,
                       const std::string& password = kTestPassword, const std::string& warning = "") {
    Generated g;
    g.name = name;
    g.password = password;
    g.warning = warning;
    g.make = [name, algorithm, extra](const std::string& dir, const std::string& path, const std::string& pw) {
        const HostCredential credential = make_host_credential(dir, name, algorithm);
        std::vector<std::string> argv = {"openssl", "pkcs12", "-export", "-inkey", credential.key_path, "-in",
                                         credential.cert_path, "-name", name, "-out", path, "-passout",
                                         std::string("env:") + kPasswordVariable};
        argv.insert(argv.end(), extra.begin(), extra.end());
        tool(argv, pw);
    };
    return g;
}

// root CA -> intermediate CA -> leaf, all made with the openssl command; the file holds
// the leaf key and all three certificates (-certfile).
Generated chain_case() {
    Generated g;
    g.name = "openssl-three-level-chain";
    g.password = kTestPassword;
    g.certificates = 3;
    g.make = [](const std::string& dir, const std::string& path, const std::string& pw) {
        auto at = [&](const std::string& file) { return dir + "/" + file; };
        const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"};
        write_text(at("ca.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n");
        write_text(at("leaf.ext"), "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n");
        std::vector<std::string> root = {"openssl", "req", "-x509", "-keyout", at("root.key"), "-out", at("root.pem"),
                                         "-subj", "/CN=p11vault chain root", "-days", "2", "-addext",
                                         "basicConstraints=critical,CA:TRUE", "-addext",
                                         "keyUsage=critical,keyCertSign,cRLSign"};
        root.insert(root.begin() + 3, ec.begin(), ec.end());
        tool(root, pw);
        const struct {
            const char* name;
            const char* subject;
            const char* issuer;
            const char* extensions;
            const char* serial;
        } steps[] = {{"intermediate", "/CN=p11vault chain intermediate", "root", "ca.ext", "2"},
                     {"leaf", "/CN=p11vault chain leaf", "intermediate", "leaf.ext", "3"}};
        for (const auto& step : steps) {
            const std::string name = step.name;
            std::vector<std::string> request = {"openssl", "req", "-new", "-keyout", at(name + ".key"), "-out",
                                                at(name + ".csr"), "-subj", step.subject};
            request.insert(request.begin() + 3, ec.begin(), ec.end());
            tool(request, pw);
            const std::string issuer = step.issuer;
            tool({"openssl", "x509", "-req", "-in", at(name + ".csr"), "-CA", at(issuer + ".pem"), "-CAkey",
                  at(issuer + ".key"), "-set_serial", step.serial, "-days", "2", "-extfile", at(step.extensions),
                  "-out", at(name + ".pem")},
                 pw);
        }
        write_text(at("chain.pem"), read_text(at("intermediate.pem")) + read_text(at("root.pem")));
        tool({"openssl", "pkcs12", "-export", "-inkey", at("leaf.key"), "-in", at("leaf.pem"), "-certfile",
              at("chain.pem"), "-name", "chain leaf", "-out", path, "-passout", std::string("env:") + kPasswordVariable},
             pw);
        // The chain really is three levels: the leaf verifies only through the intermediate.
        tool({"openssl", "verify", "-CAfile", at("root.pem"), "-untrusted", at("intermediate.pem"), at("leaf.pem")}, pw);
    };
    return g;
}

Generated certtool_ec_case() {
    Generated g;
    g.name = "certtool-ec";
    g.password = kTestPassword;
    g.make = [](const std::string& dir, const std::string& path, const std::string& pw) {
        const std::string key = dir + "/gnutls-ec.key", cert = dir + "/gnutls-ec.pem", templ = dir + "/gnutls-ec.tmpl";
        write_text(templ, "cn = \"gnutls ec\"\nexpiration_days = 2\nsigning_key\n");
        tool({"certtool", "--generate-privkey", "--key-type", "ecdsa", "--curve", "secp256r1", "--outfile", key}, pw);
        tool({"certtool", "--generate-self-signed", "--load-privkey", key, "--template", templ, "--outfile", cert}, pw);
        tool({"certtool", "--to-p12", "--load-privkey", key, "--load-certificate", cert, "--p12-name", "gnutls ec",
              "--password", pw, "--outder", "--outfile", path},
             pw);
    };
    return g;
}

// `keytool -genkeypair` of an EC key into a new store whose MAC is `mac_algorithm`
// (keystore.pkcs12.macAlgorithm, e.g. HmacPBESHA512/256).
Generated keytool_mac_case(const std::string& name, const std::string& mac_algorithm) {
    Generated g;
    g.name = name;
    g.password = kTestPassword;
    g.make = [name, mac_algorithm](const std::string&, const std::string& path, const std::string& pw) {
        tool({"keytool", "-J-Dkeystore.pkcs12.macAlgorithm=" + mac_algorithm, "-genkeypair", "-storetype", "PKCS12",
              "-keystore", path, "-storepass:env", kPasswordVariable, "-validity", "2", "-alias", name, "-keyalg", "EC",
              "-groupname", "secp256r1", "-dname", "CN=" + name},
             pw);
    };
    return g;
}

std::vector<Generated> cases() {
    return {
        openssl_case("openssl-nomac", "RSA", {"-nomac"}, kTestPassword, "no MAC"),
        openssl_case("openssl-keypbe-none", "EC", {"-keypbe", "NONE"}),
        openssl_case("openssl-certpbe-none", "RSA", {"-certpbe", "NONE"}),
        openssl_case("openssl-all-clear", "EC", {"-keypbe", "NONE", "-certpbe", "NONE", "-nomac"}, kTestPassword,
                     "no MAC"),
        openssl_case("openssl-utf8-password", "EC", {}, "p\u00e4ssw\u00f6rd \u263a \u5bc6\u7801"),
        openssl_case("openssl-utf8-password-legacy", "RSA", {"-legacy"}, "gr\u00fc\u00dfe \u00e9t\u00e9"),
        openssl_case("openssl-empty-password", "EC", {}, ""),
        openssl_case("openssl-empty-password-legacy", "RSA", {"-legacy"}, ""),
        chain_case(),
        certtool_ec_case(),
        // Issue 20: the ciphers and MACs other producers use.
        openssl_case("openssl-keypbe-camellia256", "EC", {"-keypbe", "CAMELLIA-256-CBC", "-certpbe", "CAMELLIA-256-CBC"}),
        openssl_case("openssl-keypbe-aria256", "RSA", {"-keypbe", "ARIA-256-CBC", "-certpbe", "ARIA-256-CBC"}),
        openssl_case("openssl-macalg-sha512-224", "EC", {"-macalg", "sha512-224"}),
        openssl_case("openssl-macalg-sha512-256", "EC", {"-macalg", "sha512-256"}),
        openssl_case("openssl-macalg-sha3-256", "EC", {"-macalg", "sha3-256"}),
        openssl_case("openssl-macalg-md5", "EC", {"-macalg", "md5"}, kTestPassword, "the MAC uses MD5"),
        keytool_mac_case("keytool-mac-hmacpbesha512-256", "HmacPBESHA512/256"),
        keytool_mac_case("keytool-mac-hmacpbesha512-224", "HmacPBESHA512/224"),
        // Passwords that are not valid UTF-8, as openssl converts them (issue 20 item 4):
        // the same bytes open the file in p11vault.
        openssl_case("openssl-password-e-acute-ff", "EC", {}, "\xc3\xa9\xff"),
        openssl_case("openssl-password-e-acute-ff-legacy", "RSA", {"-legacy"}, "\xc3\xa9\xff"),
        openssl_case("openssl-password-overlong-nul", "EC", {}, "a\xc0\x80" "b"),
        openssl_case("openssl-password-encoded-surrogate", "EC", {}, "\xed\xa0\x80"),
    };
}

class GeneratedFileTest : public ::testing::TestWithParam<Generated> {
protected:
    GeneratedFileTest() : token_(Backend::softhsm, "generated"), work_(make_temp_dir("generated")) {}
    ~GeneratedFileTest() override { std::filesystem::remove_all(work_); }

    TestToken token_;
    std::string work_;
};

TEST_P(GeneratedFileTest, VerifiesRestoresAndEveryKeySigns) {
    const Generated& g = GetParam();
    const std::string file = work_ + "/" + g.name + ".p12";
    ASSERT_NO_FATAL_FAILURE(g.make(work_, file, g.password));

    RunOptions options;
    options.env[kPasswordVariable] = g.password;
    const RunResult verified =
        run_p11vault({"verify", "--in", file, "--password", std::string("env:") + kPasswordVariable, "--json"}, options);
    ASSERT_EQ(verified.exit_code, 0) << verified.err;
    const json report = stdout_json(verified);
    EXPECT_EQ(report.at("keys").size(), g.keys) << report.dump(2);
    EXPECT_EQ(report.at("certificates").size(), g.certificates) << report.dump(2);
    if (!g.warning.empty()) {
        bool warned = false;
        for (const auto& warning : report.at("warnings"))
            warned = warned || warning.get<std::string>().find(g.warning) != std::string::npos;
        EXPECT_TRUE(warned) << "verify does not warn \"" << g.warning << "\": " << report.dump(2);
    }

    const auto before = token_.objects();
    const RunResult restored = restore(token_, file, {"--json"}, g.password);
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    expect_every_key_signs(token_, file, g.password, stdout_json(restored), g.keys);
    const auto after = token_.objects();
    EXPECT_EQ(count_class(after, CKO_PRIVATE_KEY), count_class(before, CKO_PRIVATE_KEY) + g.keys);
    EXPECT_EQ(count_class(after, CKO_PUBLIC_KEY), count_class(before, CKO_PUBLIC_KEY) + g.keys);
    EXPECT_EQ(count_class(after, CKO_CERTIFICATE), count_class(before, CKO_CERTIFICATE) + g.certificates);
}

// The wrong password must still be refused for each of them, except where nothing is
// encrypted and there is no MAC: such a file has no password to be wrong.
TEST_P(GeneratedFileTest, AWrongPasswordIsExit3OrReadsAnUnprotectedFile) {
    const Generated& g = GetParam();
    const std::string file = work_ + "/" + g.name + ".p12";
    ASSERT_NO_FATAL_FAILURE(g.make(work_, file, g.password));
    const auto before = token_.objects();
    const RunResult result = restore(token_, file, {}, g.password + "wrong");
    if (g.name == "openssl-all-clear") {
        EXPECT_EQ(result.exit_code, 0) << result.err;
        return;
    }
    EXPECT_EQ(result.exit_code, 3) << result.err;
    EXPECT_EQ(token_.objects(), before);
}

INSTANTIATE_TEST_SUITE_P(Tools, GeneratedFileTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Generated>& info) {
                             std::string name = info.param.name;
                             for (char& c : name)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return name;
                         });

}  // namespace
}  // namespace p11vault::testing
