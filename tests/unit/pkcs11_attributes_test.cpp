// SPDX-License-Identifier: Apache-2.0
// AttributeTemplate owns the bytes its CK_ATTRIBUTEs point to, across growth and moves.
#include <gtest/gtest.h>

#include <cstring>

#include "pkcs11/attributes.hpp"

namespace p11vault::pkcs11 {
namespace {

std::string value_of(const CK_ATTRIBUTE& attribute) {
    return std::string(static_cast<const char*>(attribute.pValue), attribute.ulValueLen);
}

AttributeTemplate built_elsewhere() {
    AttributeTemplate t;
    std::string label = "temporary label";  // dies before the template is used
    t.add_class(CKO_PRIVATE_KEY).add_string(CKA_LABEL, label).add_bool(CKA_SENSITIVE, true);
    label.assign(label.size(), 'X');
    return t;
}

TEST(Pkcs11AttributeTemplate, ValuesAreCopiedAndTypedAsPkcs11Expects) {
    AttributeTemplate t = built_elsewhere();
    ASSERT_EQ(t.count(), 3u);
    CK_ATTRIBUTE* a = t.data();
    EXPECT_EQ(a[0].type, static_cast<CK_ATTRIBUTE_TYPE>(CKA_CLASS));
    ASSERT_EQ(a[0].ulValueLen, sizeof(CK_ULONG));
    EXPECT_EQ(*static_cast<CK_ULONG*>(a[0].pValue), static_cast<CK_ULONG>(CKO_PRIVATE_KEY));
    EXPECT_EQ(value_of(a[1]), "temporary label");
    ASSERT_EQ(a[2].ulValueLen, sizeof(CK_BBOOL));
    EXPECT_EQ(*static_cast<CK_BBOOL*>(a[2].pValue), CK_TRUE);
    EXPECT_EQ(t.describe(), "[CKA_CLASS, CKA_LABEL, CKA_SENSITIVE]");
    EXPECT_TRUE(t.has(CKA_LABEL));
    EXPECT_FALSE(t.has(CKA_ID));
}

TEST(Pkcs11AttributeTemplate, EarlierPointersSurviveGrowthAndMoves) {
    AttributeTemplate t;
    const std::uint8_t first[] = {1, 2, 3};
    t.add_bytes(CKA_ID, first).add_bool(CKA_TOKEN, true).add_ulong(CKA_KEY_TYPE, CKK_EC);
    for (int i = 0; i < 1000; ++i) t.add_string(CKA_LABEL, "label " + std::to_string(i));
    AttributeTemplate moved = std::move(t);
    AttributeTemplate assigned;
    assigned = std::move(moved);
    CK_ATTRIBUTE* a = assigned.data();
    ASSERT_EQ(assigned.count(), 1003u);
    ASSERT_EQ(a[0].ulValueLen, 3u);
    EXPECT_EQ(std::memcmp(a[0].pValue, first, 3), 0);
    EXPECT_EQ(*static_cast<CK_BBOOL*>(a[1].pValue), CK_TRUE);
    EXPECT_EQ(*static_cast<CK_ULONG*>(a[2].pValue), static_cast<CK_ULONG>(CKK_EC));
    EXPECT_EQ(value_of(a[3]), "label 0");
    EXPECT_EQ(value_of(a[1002]), "label 999");
}

TEST(Pkcs11AttributeTemplate, SecretsAreCopiedIntoTheTemplate) {
    SecretBytes secret = SecretBytes::from_text("key bits");
    AttributeTemplate t;
    t.add_secret(CKA_VALUE, secret);
    secret.clear();
    ASSERT_EQ(t.count(), 1u);
    EXPECT_EQ(value_of(t.data()[0]), "key bits");
}

TEST(Pkcs11AttributeTemplate, EmptyValuesHaveNoPointer) {
    AttributeTemplate t;
    t.add_bytes(CKA_ID, {}).add_string(CKA_LABEL, "").add_secret(CKA_VALUE, SecretBytes());
    for (CK_ULONG i = 0; i < t.count(); ++i) {
        EXPECT_EQ(t.data()[i].pValue, nullptr);
        EXPECT_EQ(t.data()[i].ulValueLen, 0u);
    }
    EXPECT_EQ(AttributeTemplate().describe(), "[]");
}

}  // namespace
}  // namespace p11vault::pkcs11
