// SPDX-License-Identifier: Apache-2.0
// RFC 7512 pkcs11: URIs through p11-kit.
#include <gtest/gtest.h>

#include "p11vault/error.hpp"
#include "pkcs11/uri.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::pkcs11 {
namespace {

TEST(Pkcs11Uri, TokenAndObjectAttributes) {
    TokenUri uri = parse_token_uri(
        "pkcs11:token=My%20CA;manufacturer=SoftHSM%20project;model=SoftHSM%20v2;serial=0123abcd;"
        "object=root%20key;id=%01%02%ff;type=private");
    EXPECT_EQ(uri.token_label, "My CA");
    EXPECT_EQ(uri.manufacturer, "SoftHSM project");
    EXPECT_EQ(uri.model, "SoftHSM v2");
    EXPECT_EQ(uri.serial, "0123abcd");
    EXPECT_EQ(uri.object_label, "root key");
    EXPECT_EQ(uri.object_id, (std::vector<std::uint8_t>{0x01, 0x02, 0xff}));
    EXPECT_EQ(uri.object_class, static_cast<CK_OBJECT_CLASS>(CKO_PRIVATE_KEY));
    EXPECT_FALSE(uri.slot_id.has_value());
    EXPECT_FALSE(uri.module_path.has_value());
}

TEST(Pkcs11Uri, AbsentAttributesStayEmpty) {
    TokenUri uri = parse_token_uri("pkcs11:");
    EXPECT_FALSE(uri.token_label || uri.manufacturer || uri.model || uri.serial || uri.slot_id || uri.object_id ||
                 uri.object_label || uri.object_class || uri.module_path);
    TokenInfo any;
    any.label = "whatever";
    EXPECT_TRUE(uri.matches(any));
}

TEST(Pkcs11Uri, SlotTypeAndModulePath) {
    TokenUri uri = parse_token_uri("pkcs11:slot-id=3;type=cert?module-path=/usr/lib/softhsm/libsofthsm2.so");
    EXPECT_EQ(uri.slot_id, 3u);
    EXPECT_EQ(uri.object_class, static_cast<CK_OBJECT_CLASS>(CKO_CERTIFICATE));
    EXPECT_EQ(uri.module_path, "/usr/lib/softhsm/libsofthsm2.so");
}

TEST(Pkcs11Uri, EmptyTokenLabelIsPresent) {
    TokenUri uri = parse_token_uri("pkcs11:token=");
    ASSERT_TRUE(uri.token_label.has_value());
    EXPECT_EQ(*uri.token_label, "");
}

TEST(Pkcs11Uri, MatchesComparesEveryGivenField) {
    TokenInfo token;
    token.label = "CA";
    token.manufacturer = "SoftHSM project";
    token.model = "SoftHSM v2";
    token.serial = "abc";
    EXPECT_TRUE(parse_token_uri("pkcs11:token=CA").matches(token));
    EXPECT_TRUE(parse_token_uri("pkcs11:token=CA;serial=abc;model=SoftHSM%20v2").matches(token));
    EXPECT_FALSE(parse_token_uri("pkcs11:token=CA;serial=abd").matches(token));
    EXPECT_FALSE(parse_token_uri("pkcs11:token=C").matches(token));
    EXPECT_FALSE(parse_token_uri("pkcs11:manufacturer=NSS").matches(token));
}

TEST(Pkcs11Uri, MatchesARealToken) {
    testing::TestToken token(testing::Backend::softhsm, "uri token");
    TokenInfo info = token.module()->token_info(token.slot());
    EXPECT_TRUE(parse_token_uri("pkcs11:token=uri%20token").matches(info));
    EXPECT_TRUE(parse_token_uri("pkcs11:token=uri%20token;serial=" + info.serial).matches(info));
    EXPECT_FALSE(parse_token_uri("pkcs11:token=uri").matches(info));
}

void expect_usage_error(const std::string& text, const std::string& reason) {
    try {
        parse_token_uri(text);
        FAIL() << text << " parsed";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::usage) << text;
        EXPECT_EQ(std::string(e.what()), "invalid pkcs11: URI: " + reason) << text;
    }
}

TEST(Pkcs11Uri, InvalidUrisAreUsageErrorsWithP11KitsMessage) {
    expect_usage_error("https://example.com/", "URI scheme must be 'pkcs11:'");
    expect_usage_error("pkcs11:id=%zz", "URI encoding invalid or corrupted");
    expect_usage_error("pkcs11:slot-id=x", "URI syntax is invalid");
    expect_usage_error("pkcs11:frobnicate=1", "p11vault does not support the attribute frobnicate");
}

TEST(Pkcs11Uri, ModuleNameModulePathAndPinSourceAreRead) {
    TokenUri uri = parse_token_uri(
        "pkcs11:token=CA?module-name=softhsm2&module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin");
    EXPECT_EQ(uri.module_name, "softhsm2");
    EXPECT_EQ(uri.module_path, "/usr/lib/softhsm/libsofthsm2.so");
    EXPECT_EQ(uri.pin_source, "file:/run/pin");
    EXPECT_EQ(parse_token_uri("pkcs11:?pin-source=%2Frun%2Fmy%20pin").pin_source, "/run/my pin");
    TokenUri none = parse_token_uri("pkcs11:token=CA");
    EXPECT_FALSE(none.module_name || none.module_path || none.pin_source);
}

// RFC 7512 defines these, and vendors may add more; p11vault would ignore them, so it
// names and refuses them instead.
TEST(Pkcs11Uri, AttributesP11vaultDoesNotActOnAreNamed) {
    for (const char* name : {"library-manufacturer", "library-description", "library-version", "slot-description",
                             "slot-manufacturer"}) {
        expect_usage_error(std::string("pkcs11:token=CA;") + name + "=1",
                           std::string("p11vault does not support the attribute ") + name);
    }
    expect_usage_error("pkcs11:token=CA?x-vendor=1", "p11vault does not support the query attribute x-vendor");
    expect_usage_error("pkcs11:token=CA?module-name=a&frob=2", "p11vault does not support the query attribute frob");
}

TEST(Pkcs11Uri, PinValueIsRefusedWithoutItsValue) {
    for (const std::string uri : {"pkcs11:token=CA?pin-value=s3cr3t-4711", "pkcs11:?module-name=softhsm2&pin-value=s3cr3t-4711",
                                  "pkcs11:token=CA?pin-value=s3cr3t%2d4711"}) {
        try {
            parse_token_uri(uri);
            FAIL() << "parsed";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::usage);
            const std::string message = e.what();
            EXPECT_NE(message.find("pin-value is refused"), std::string::npos) << message;
            EXPECT_EQ(message.find("s3cr3t"), std::string::npos) << message;
            EXPECT_EQ(message.find("4711"), std::string::npos) << message;
        }
    }
}

}  // namespace
}  // namespace p11vault::pkcs11
