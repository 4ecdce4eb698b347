// SPDX-License-Identifier: Apache-2.0
// Passwords exactly as OpenSSL reads them (issue 20 item 4): the PKCS#12 KDF's BMPString
// of a password that is not valid UTF-8 (é followed by FF, an overlong C0 80, an encoded
// surrogate) is OpenSSL's, so a file either writes opens in the other with the same
// bytes; files earlier p11vault builds wrote with such a password still open.
#include <gtest/gtest.h>

#include <openssl/pkcs12.h>

#include <algorithm>
#include <ostream>
#include <string>
#include <vector>

#include "p11vault/error.hpp"
#include "src/keys.hpp"
#include "src/ossl.hpp"
#include "src/pkcs12/password.hpp"
#include "src/pkcs12/reader.hpp"
#include "src/pkcs12/writer.hpp"
#include "tests/unit/pkcs12_test_material.hpp"

namespace p11vault {
namespace {

using pkcs12::Bytes;

struct OddPassword {
    const char* name;
    std::string bytes;
    Bytes openssl_bmp;  // what OPENSSL_utf82uni makes of it (OpenSSL 3.0.19)
};

// gtest prints the parameter in failures: its name says it all.
void PrintTo(const OddPassword& password, std::ostream* out) { *out << password.name; }

std::vector<OddPassword> odd_passwords() {
    return {
        // Not UTF-8 as a whole: OpenSSL takes every byte as ISO-8859-1, the valid é too.
        {"e_acute_ff", "\xc3\xa9\xff", {0x00, 0xc3, 0x00, 0xa9, 0x00, 0xff, 0x00, 0x00}},
        // An overlong NUL is not UTF-8.
        {"overlong_c0_80", "a\xc0\x80" "b", {0x00, 0x61, 0x00, 0xc0, 0x00, 0x80, 0x00, 0x62, 0x00, 0x00}},
        // U+D800 encoded (CESU-8 style) is not UTF-8.
        {"encoded_surrogate", "\xed\xa0\x80", {0x00, 0xed, 0x00, 0xa0, 0x00, 0x80, 0x00, 0x00}},
    };
}

SecretBytes secret(const std::string& bytes) { return SecretBytes(bytes.data(), bytes.size()); }
Bytes plain(const SecretBytes& bytes) { return Bytes(bytes.data(), bytes.data() + bytes.size()); }

using testing::der_of;
using testing::generate_ec;

class OddPasswordTest : public ::testing::TestWithParam<OddPassword> {};

TEST_P(OddPasswordTest, BmpStringIsOpenSslsConversion) {
    const OddPassword& password = GetParam();
    auto bmp = pkcs12::password_bytes(secret(password.bytes), pkcs12::PasswordForm::bmp);
    ASSERT_TRUE(bmp);
    EXPECT_EQ(plain(*bmp), password.openssl_bmp);
    EXPECT_FALSE(pkcs12::is_valid_utf8(secret(password.bytes)));
}

// OpenSSL's PKCS12_create (PKCS#12-KDF MAC; 3DES bags, whose key is the PKCS#12 KDF's too,
// and PBES2 bags) with the password's bytes: p11vault opens it with the same bytes.
TEST_P(OddPasswordTest, FileOpenSslWritesOpensInP11vault) {
    const OddPassword& password = GetParam();
    auto key = generate_ec();
    auto cert = testing::self_signed(key.get(), "passwords");
    for (int bags : {NID_pbe_WithSHA1And3_Key_TripleDES_CBC, NID_aes_256_cbc}) {
        SCOPED_TRACE(OBJ_nid2sn(bags));
        ossl::Pkcs12 p12(PKCS12_create_ex(password.bytes.c_str(), "odd", key.get(), cert.get(), nullptr, bags, bags,
                                          2048, 2048, 0, ossl::libctx(), nullptr));
        ASSERT_TRUE(p12);
        try {
            pkcs12::Reader reader(der_of(p12.get()), secret(password.bytes));
            ASSERT_EQ(reader.contents().keys.size(), 1u);
            EXPECT_EQ(EVP_PKEY_eq(reader.private_key(reader.contents().keys[0]).get(), key.get()), 1);
            EXPECT_TRUE(reader.decryptor().quirks_used().empty());
        } catch (const Error& e) {
            ADD_FAILURE() << "p11vault does not open it: " << e.what();
        }
    }
}

// p11vault's file (both profiles with a PKCS#12 KDF) opens in OpenSSL with the same bytes.
TEST_P(OddPasswordTest, FileP11vaultWritesOpensInOpenSsl) {
    const OddPassword& password = GetParam();
    auto key = generate_ec();
    auto cert = testing::self_signed(key.get(), "passwords");
    for (pkcs12::Profile profile : {pkcs12::Profile::modern, pkcs12::Profile::legacy}) {
        SCOPED_TRACE(pkcs12::profile_name(profile));
        pkcs12::Writer writer(profile, secret(password.bytes), 2048);
        writer.add_clear_key(keys::private_key_info_der(key.get()), {Bytes{0x01}, std::string("odd")});
        writer.add_certificate(cert.get(), {Bytes{0x01}, std::nullopt});
        const Bytes der = writer.finish();
        const unsigned char* p = der.data();
        ossl::Pkcs12 p12(d2i_PKCS12(nullptr, &p, static_cast<long>(der.size())));
        ASSERT_TRUE(p12);
        EXPECT_EQ(PKCS12_verify_mac(p12.get(), password.bytes.data(), static_cast<int>(password.bytes.size())), 1);
        EVP_PKEY* parsed_key = nullptr;
        X509* parsed_cert = nullptr;
        ASSERT_EQ(PKCS12_parse(p12.get(), password.bytes.c_str(), &parsed_key, &parsed_cert, nullptr), 1);
        ossl::Pkey owned_key(parsed_key);
        ossl::Cert owned_cert(parsed_cert);
        EXPECT_EQ(EVP_PKEY_eq(owned_key.get(), key.get()), 1);
        ossl::last_error();
    }
}

// A file an earlier p11vault build wrote with such a password: its MAC key came from the
// BMPString that takes only the invalid bytes one by one. Made here by replacing a
// modern file's MAC with that one; it opens, and verify names the quirk.
TEST_P(OddPasswordTest, FileOfEarlierP11vaultStillOpens) {
    const OddPassword& password = GetParam();
    auto key = generate_ec();
    auto cert = testing::self_signed(key.get(), "passwords");
    pkcs12::Writer writer(pkcs12::Profile::modern, secret(password.bytes), 2048);
    writer.add_clear_key(keys::private_key_info_der(key.get()), {Bytes{0x01}, std::nullopt});
    writer.add_certificate(cert.get(), {Bytes{0x01}, std::nullopt});
    Bytes der = writer.finish();

    const unsigned char* p = der.data();
    ossl::Pkcs12 p12(d2i_PKCS12(nullptr, &p, static_cast<long>(der.size())));
    ASSERT_TRUE(p12);
    const ASN1_OCTET_STRING* mac = nullptr;
    const ASN1_OCTET_STRING* salt = nullptr;
    const ASN1_INTEGER* iterations = nullptr;
    PKCS12_get0_mac(&mac, nullptr, &salt, &iterations, p12.get());
    STACK_OF(PKCS7)* safes = PKCS12_unpack_authsafes(p12.get());
    ASSERT_NE(safes, nullptr);
    unsigned char* authsafe = nullptr;
    const int length = ASN1_item_i2d(reinterpret_cast<ASN1_VALUE*>(safes), &authsafe, ASN1_ITEM_rptr(PKCS12_AUTHSAFES));
    sk_PKCS7_pop_free(safes, PKCS7_free);
    ASSERT_GT(length, 0);
    const Bytes safe_bytes(authsafe, authsafe + length);
    OPENSSL_free(authsafe);
    auto old_bmp = pkcs12::password_bytes(secret(password.bytes), pkcs12::PasswordForm::bmp_bytewise);
    ASSERT_TRUE(old_bmp);
    ASSERT_NE(plain(*old_bmp), password.openssl_bmp) << "the two conversions agree: nothing to test";
    const SecretBytes mac_key = pkcs12::pkcs12_kdf(*old_bmp, ossl::octets(salt),
                                                   static_cast<std::uint64_t>(ASN1_INTEGER_get(iterations)), "SHA256",
                                                   3, 32);
    const Bytes old_mac = pkcs12::hmac("SHA256", mac_key, safe_bytes);
    const Bytes new_mac = ossl::octets(mac);
    auto at = std::search(der.begin(), der.end(), new_mac.begin(), new_mac.end());
    ASSERT_NE(at, der.end());
    std::copy(old_mac.begin(), old_mac.end(), at);

    pkcs12::Reader reader(der, secret(password.bytes));
    EXPECT_EQ(reader.contents().mac.password_form, pkcs12::PasswordForm::bmp_bytewise);
    ASSERT_EQ(reader.contents().keys.size(), 1u);
    EXPECT_EQ(EVP_PKEY_eq(reader.private_key(reader.contents().keys[0]).get(), key.get()), 1);
    const auto& quirks = reader.decryptor().quirks_used();
    EXPECT_NE(std::find(quirks.begin(), quirks.end(), std::string(pkcs12::kBytewiseBmpQuirk)), quirks.end());
}

INSTANTIATE_TEST_SUITE_P(Passwords, OddPasswordTest, ::testing::ValuesIn(odd_passwords()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(PasswordUtf8, ValidUtf8IsToldFromTheRest) {
    EXPECT_TRUE(pkcs12::is_valid_utf8(SecretBytes()));
    EXPECT_TRUE(pkcs12::is_valid_utf8(SecretBytes::from_text("p\u00e4ss \u263a \U0001F600")));
    EXPECT_FALSE(pkcs12::is_valid_utf8(SecretBytes::from_text("\xf4\x90\x80\x80")));  // above U+10FFFF
    EXPECT_FALSE(pkcs12::is_valid_utf8(SecretBytes::from_text("abc\xc3")));           // truncated
}

}  // namespace
}  // namespace p11vault
