// SPDX-License-Identifier: Apache-2.0
// The reader at the level of the AuthenticatedSafe's ContentInfos (the "safes"): each kind
// of damage there gets its own message and exit 4, and only after the MAC has verified;
// under a wrong password the same file is exit 3, since nothing in an unauthenticated file
// may be reported as its content. The files are built byte by byte (DER) with a real
// HMAC-SHA256 MAC (PKCS#12 KDF), because no library writes such damage.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>

#include "p11vault/error.hpp"
#include "src/pkcs12/password.hpp"
#include "src/pkcs12/pbe.hpp"
#include "src/pkcs12/reader.hpp"
#include "tests/support/der.hpp"

namespace p11vault {
namespace {

using namespace testing::der;

constexpr std::uint8_t kIterations = 100;

// PFX { 3, ContentInfo { data, authenticated_safe }, MacData (HMAC-SHA256 under
// `password`) }. authenticated_safe is taken as given, valid or not.
Bytes pfx_with_mac(const Bytes& authenticated_safe, const char* password) {
    const Bytes salt = {1, 2, 3, 4, 5, 6, 7, 8};
    auto bmp = pkcs12::password_bytes(SecretBytes::from_text(password), pkcs12::PasswordForm::bmp);
    const SecretBytes key = pkcs12::pkcs12_kdf(*bmp, salt, kIterations, "SHA256", 3, 32);
    const Bytes mac = pkcs12::hmac("SHA256", key, authenticated_safe);
    const Bytes digest_info = sequence({sequence({kOidSha256, tlv(0x05, {})}), octet_string(mac)});
    return sequence({integer(3), data_content_info(authenticated_safe),
                     sequence({digest_info, octet_string(salt), integer(kIterations)})});
}

const Bytes kGoodSafe = data_content_info(sequence({secret_bag()}));

// The exit code and message of reading `der` with `password`, or nullopt when it is read.
std::optional<std::pair<ErrorKind, std::string>> refusal(const Bytes& der, const char* password) {
    try {
        pkcs12::Reader reader(der, SecretBytes::from_text(password));
        return std::nullopt;
    } catch (const Error& e) {
        return std::make_pair(e.kind(), std::string(e.what()));
    }
}

// Reading `authenticated_safe` under the right password fails with exit 4 and `message`;
// under a wrong one with exit 3.
void expect_damage_after_the_mac(const Bytes& authenticated_safe, const std::string& message) {
    const Bytes der = pfx_with_mac(authenticated_safe, "right");
    auto right = refusal(der, "right");
    ASSERT_TRUE(right.has_value()) << "the damaged file was read";
    EXPECT_EQ(right->first, ErrorKind::bad_input);
    EXPECT_EQ(right->second, message);
    auto wrong = refusal(der, "wrong");
    ASSERT_TRUE(wrong.has_value());
    EXPECT_EQ(wrong->first, ErrorKind::bad_password) << wrong->second;
}

TEST(ReaderSafes, TwoDataSafesAreReadBagByBagAfterTheMac) {
    pkcs12::Reader reader(pfx_with_mac(sequence({kGoodSafe, kGoodSafe}), "right"), SecretBytes::from_text("right"));
    const pkcs12::Contents& contents = reader.contents();
    EXPECT_TRUE(contents.mac.present);
    EXPECT_EQ(contents.mac.algorithm, "HMAC-SHA256 (PKCS#12 KDF)");
    EXPECT_EQ(contents.mac.iterations, kIterations);
    EXPECT_TRUE(contents.keys.empty());
    EXPECT_TRUE(contents.certificates.empty());
    EXPECT_TRUE(contents.warnings.empty());
    // A secretBag that is not Java's PKCS#8 form is never dropped in silence: restore refuses it.
    EXPECT_EQ(contents.unsupported,
              (std::vector<std::string>{"bag 1 (a secretBag of type pkcs7-data, not a PKCS#8 key as Java writes it)",
                                        "bag 2 (a secretBag of type pkcs7-data, not a PKCS#8 key as Java writes it)"}));

    auto wrong = refusal(pfx_with_mac(sequence({kGoodSafe, kGoodSafe}), "right"), "wrong");
    ASSERT_TRUE(wrong.has_value());
    EXPECT_EQ(wrong->first, ErrorKind::bad_password);
}

TEST(ReaderSafes, ADataSafeWithoutContentIsNamedByItsPlace) {
    expect_damage_after_the_mac(sequence({kGoodSafe, sequence({kOidData})}),
                                "not a valid PKCS#12 file: safe 2 has no content");
}

TEST(ReaderSafes, ADataSafeThatIsNotSafeContentsIsNamedByItsPlace) {
    expect_damage_after_the_mac(sequence({data_content_info(integer(5)), kGoodSafe}),
                                "not a valid PKCS#12 file: safe 1");
}

TEST(ReaderSafes, AnEncryptedSafeWithoutContentIsNamedByItsPlace) {
    expect_damage_after_the_mac(sequence({kGoodSafe, sequence({kOidEncryptedData})}),
                                "not a valid PKCS#12 file: encrypted safe 2 has no content");
}

TEST(ReaderSafes, APublicKeyEncryptedSafeIsRefusedAsUnsupported) {
    expect_damage_after_the_mac(sequence({sequence({kOidEnvelopedData})}),
                                "safe 1 is pkcs7-envelopedData (public-key encrypted safes are not supported)");
}

TEST(ReaderSafes, AnAuthenticatedSafeThatIsNotASequenceOfContentInfoIsExit4) {
    expect_damage_after_the_mac(integer(5), "not a valid PKCS#12 file: AuthenticatedSafe");
    expect_damage_after_the_mac(sequence({integer(5)}), "not a valid PKCS#12 file: AuthenticatedSafe");
}

}  // namespace
}  // namespace p11vault
