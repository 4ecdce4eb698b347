// SPDX-License-Identifier: Apache-2.0
// Names of PKCS#11 constants, Pkcs11Error's message format and exit codes, and check().
#include <gtest/gtest.h>

#include "pkcs11/error.hpp"

namespace p11vault::pkcs11 {
namespace {

TEST(Pkcs11Names, KnownValuesHaveTheirStandardNames) {
    EXPECT_EQ(rv_name(CKR_OK), "CKR_OK");
    EXPECT_EQ(rv_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
    EXPECT_EQ(rv_name(CKR_KEY_UNEXTRACTABLE), "CKR_KEY_UNEXTRACTABLE");
    EXPECT_EQ(rv_name(CKR_CRYPTOKI_ALREADY_INITIALIZED), "CKR_CRYPTOKI_ALREADY_INITIALIZED");
    EXPECT_EQ(rv_name(0xCE534351UL), "CKR_NSS_CERTDB_FAILED");

    EXPECT_EQ(mechanism_name(CKM_RSA_PKCS_KEY_PAIR_GEN), "CKM_RSA_PKCS_KEY_PAIR_GEN");
    EXPECT_EQ(mechanism_name(CKM_EC_KEY_PAIR_GEN), "CKM_EC_KEY_PAIR_GEN");  // not the ECDSA alias
    EXPECT_EQ(mechanism_name(CKM_EC_EDWARDS_KEY_PAIR_GEN), "CKM_EC_EDWARDS_KEY_PAIR_GEN");
    EXPECT_EQ(mechanism_name(CKM_EDDSA), "CKM_EDDSA");
    EXPECT_EQ(mechanism_name(CKM_AES_KEY_WRAP_PAD), "CKM_AES_KEY_WRAP_PAD");
    EXPECT_EQ(mechanism_name(CKM_AES_CBC_PAD), "CKM_AES_CBC_PAD");
    EXPECT_EQ(mechanism_name(CKM_DES3_CBC_PAD), "CKM_DES3_CBC_PAD");
    EXPECT_EQ(mechanism_name(CKM_SHA256), "CKM_SHA256");
    EXPECT_EQ(mechanism_name(CKM_PKCS5_PBKD2), "CKM_PKCS5_PBKD2");
    EXPECT_EQ(mechanism_name(CKM_ECDSA), "CKM_ECDSA");

    EXPECT_EQ(attribute_name(CKA_MODULUS), "CKA_MODULUS");
    EXPECT_EQ(attribute_name(CKA_EC_PARAMS), "CKA_EC_PARAMS");  // not CKA_ECDSA_PARAMS
    EXPECT_EQ(attribute_name(CKA_WRAP_WITH_TRUSTED), "CKA_WRAP_WITH_TRUSTED");
    EXPECT_EQ(attribute_name(CKA_UNWRAP_TEMPLATE), "CKA_UNWRAP_TEMPLATE");
    EXPECT_EQ(attribute_name(0xD5A0DB00UL), "CKA_NSS_DB");

    EXPECT_EQ(key_type_name(CKK_RSA), "CKK_RSA");
    EXPECT_EQ(key_type_name(CKK_EC), "CKK_EC");
    EXPECT_EQ(key_type_name(CKK_EC_EDWARDS), "CKK_EC_EDWARDS");
    EXPECT_EQ(key_type_name(CKK_AES), "CKK_AES");
    EXPECT_EQ(object_class_name(CKO_PRIVATE_KEY), "CKO_PRIVATE_KEY");
    EXPECT_EQ(object_class_name(CKO_CERTIFICATE), "CKO_CERTIFICATE");
}

TEST(Pkcs11Names, UnknownValuesPrintAsHex) {
    EXPECT_EQ(rv_name(0x80000001UL), "CKR_0x80000001");
    EXPECT_EQ(mechanism_name(0x80001234UL), "CKM_0x80001234");
    EXPECT_EQ(attribute_name(0x7777UL), "CKA_0x7777");
    EXPECT_EQ(key_type_name(0x80000000UL), "CKK_0x80000000");
    EXPECT_EQ(object_class_name(0x99UL), "CKO_0x99");
}

TEST(Pkcs11Error, MessageIsFunctionColonReturnValue) {
    Pkcs11Error plain("C_Login", CKR_PIN_INCORRECT);
    EXPECT_STREQ(plain.what(), "C_Login: CKR_PIN_INCORRECT");
    EXPECT_EQ(plain.rv(), static_cast<CK_RV>(CKR_PIN_INCORRECT));
    EXPECT_EQ(plain.function(), "C_Login");
    EXPECT_EQ(plain.kind(), ErrorKind::token);

    Pkcs11Error hinted("C_WrapKey", CKR_KEY_NOT_WRAPPABLE, "CKM_AES_KEY_WRAP_PAD");
    EXPECT_STREQ(hinted.what(), "C_WrapKey: CKR_KEY_NOT_WRAPPABLE (CKM_AES_KEY_WRAP_PAD)");
}

TEST(Pkcs11Error, ExitCodes) {
    EXPECT_EQ(error_kind_for(CKR_KEY_UNEXTRACTABLE), ErrorKind::refused);
    EXPECT_EQ(error_kind_for(CKR_KEY_NOT_WRAPPABLE), ErrorKind::refused);
    EXPECT_EQ(error_kind_for(CKR_PIN_INCORRECT), ErrorKind::token);
    EXPECT_EQ(error_kind_for(CKR_PIN_LOCKED), ErrorKind::token);
    EXPECT_EQ(error_kind_for(CKR_SLOT_ID_INVALID), ErrorKind::token);
    EXPECT_EQ(error_kind_for(CKR_FUNCTION_FAILED), ErrorKind::token);
    EXPECT_EQ(error_kind_for(0x80000001UL), ErrorKind::token);
}

TEST(Pkcs11Check, ThrowsOnFailureAndLogsEachCall) {
    EXPECT_NO_THROW(check(CKR_OK, "C_GetInfo"));
    EXPECT_THROW(check(CKR_DEVICE_ERROR, "C_GetInfo"), Pkcs11Error);
    EXPECT_EQ(check_allowing(CKR_USER_ALREADY_LOGGED_IN, "C_Login", {CKR_USER_ALREADY_LOGGED_IN}),
              static_cast<CK_RV>(CKR_USER_ALREADY_LOGGED_IN));
    EXPECT_THROW(check_allowing(CKR_PIN_INCORRECT, "C_Login", {CKR_USER_ALREADY_LOGGED_IN}), Pkcs11Error);

    ::testing::internal::CaptureStderr();
    set_debug_logging(true);
    EXPECT_TRUE(debug_logging());
    check(CKR_OK, "C_GetInfo");
    EXPECT_THROW(check(CKR_MECHANISM_INVALID, "C_WrapKey", "CKM_AES_CBC_PAD"), Pkcs11Error);
    set_debug_logging(false);
    check(CKR_OK, "C_NotLogged");
    std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(log,
              "p11vault: debug: C_GetInfo: CKR_OK\n"
              "p11vault: debug: C_WrapKey CKM_AES_CBC_PAD: CKR_MECHANISM_INVALID\n");
}

}  // namespace
}  // namespace p11vault::pkcs11
