// SPDX-License-Identifier: Apache-2.0
// Session against real SoftHSM and NSS softoken tokens: login, objects, defensive
// attribute reads, wrap/unwrap with each backend's mechanism, and the debug log.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "pkcs11/error.hpp"
#include "pkcs11/session.hpp"
#include "src/pkcs12/pbe.hpp"
#include "src/transport.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using pkcs11::AttributeTemplate;
using pkcs11::Mechanism;
using pkcs11::Pkcs11Error;

const std::uint8_t message[] = {'p', '1', '1', 'v', 'a', 'u', 'l', 't'};

class Pkcs11SessionTest : public ::testing::TestWithParam<Backend> {
protected:
    void SetUp() override { token_ = std::make_unique<TestToken>(GetParam()); }
    void TearDown() override { token_.reset(); }

    // The wrap mechanism each backend offers for private keys (design/extraction.md).
    static constexpr std::uint8_t wrap_iv[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    Mechanism wrap_mechanism() const {
        if (GetParam() == Backend::softhsm) return Mechanism(CKM_AES_KEY_WRAP_PAD);
        return Mechanism(CKM_AES_CBC_PAD, wrap_iv);
    }

    std::unique_ptr<TestToken> token_;
};

TEST_P(Pkcs11SessionTest, WrongPinIsPinIncorrectAndExitCode5) {
    auto session = token_->open_session(true, false);
    try {
        session->login(SecretBytes::from_text("not-the-pin"));
        FAIL() << "no exception";
    } catch (const Pkcs11Error& e) {
        EXPECT_STREQ(e.what(), "C_Login: CKR_PIN_INCORRECT");
        EXPECT_EQ(e.rv(), static_cast<CK_RV>(CKR_PIN_INCORRECT));
        EXPECT_EQ(e.function(), "C_Login");
        EXPECT_EQ(e.kind(), ErrorKind::token);
        EXPECT_EQ(static_cast<int>(e.kind()), 5);
    }
    EXPECT_EQ(session->state(), static_cast<CK_STATE>(CKS_RW_PUBLIC_SESSION));
}

TEST_P(Pkcs11SessionTest, LoginTwiceAndLogoutTwiceAreFine) {
    auto session = token_->open_session(true, false);
    session->login(token_->user_pin_secret());
    EXPECT_EQ(session->state(), static_cast<CK_STATE>(CKS_RW_USER_FUNCTIONS));
    EXPECT_NO_THROW(session->login(token_->user_pin_secret()));  // CKR_USER_ALREADY_LOGGED_IN
    auto second = token_->open_session(false, true);              // shares the login
    EXPECT_EQ(second->state(), static_cast<CK_STATE>(CKS_RO_USER_FUNCTIONS));
    session->logout();
    EXPECT_EQ(session->state(), static_cast<CK_STATE>(CKS_RW_PUBLIC_SESSION));
    EXPECT_NO_THROW(session->logout());  // CKR_USER_NOT_LOGGED_IN
}

TEST_P(Pkcs11SessionTest, CreateFindSetAndDestroyADataObject) {
    auto session = token_->open_session();
    const std::uint8_t value[] = {0xde, 0xad, 0xbe, 0xef};
    AttributeTemplate data;
    // A public session object: NSS softoken refuses CKO_DATA in its database and private
    // data objects (see the quirks).
    data.add_class(CKO_DATA)
        .add_bool(CKA_TOKEN, false)
        .add_bool(CKA_PRIVATE, false)
        .add_string(CKA_LABEL, "data-1")
        .add_string(CKA_APPLICATION, "p11vault-test")
        .add_bytes(CKA_VALUE, value);
    CK_OBJECT_HANDLE object = session->create_object(data);

    AttributeTemplate by_label;
    by_label.add_class(CKO_DATA).add_string(CKA_LABEL, "data-1");
    auto found = session->find(by_label);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0], object);
    EXPECT_EQ(session->get_bytes(object, CKA_VALUE), pkcs11::Bytes(std::begin(value), std::end(value)));
    EXPECT_EQ(session->get_ulong(object, CKA_CLASS), static_cast<CK_ULONG>(CKO_DATA));
    EXPECT_EQ(session->get_bool(object, CKA_TOKEN), false);
    EXPECT_EQ(token_->object_count(), 1u);  // session objects are visible to every session

    AttributeTemplate relabel;
    relabel.add_string(CKA_LABEL, "data-2");
    session->set_attributes(object, relabel);
    EXPECT_TRUE(session->find(by_label).empty());
    EXPECT_EQ(session->get_attributes(object, std::vector<CK_ATTRIBUTE_TYPE>{CKA_LABEL}).text(CKA_LABEL), "data-2");

    session->destroy_object(object);
    EXPECT_EQ(token_->object_count(), 0u);
    EXPECT_THROW(session->destroy_object(object), Pkcs11Error);
}

TEST_P(Pkcs11SessionTest, FindReadsBeyondOneBatchAndHonoursTheLimit) {
    auto session = token_->open_session();
    for (int i = 0; i < 70; ++i) {
        AttributeTemplate data;
        data.add_class(CKO_DATA).add_bool(CKA_TOKEN, false).add_string(CKA_LABEL, "batch");
        session->create_object(data);
    }
    AttributeTemplate match;
    match.add_class(CKO_DATA).add_string(CKA_LABEL, "batch");
    auto all = session->find(match);
    EXPECT_EQ(all.size(), 70u);
    std::sort(all.begin(), all.end());
    EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "duplicate handles";
    EXPECT_EQ(session->find(match, 5).size(), 5u);
    // The search was finished properly: a new one starts fine.
    EXPECT_EQ(session->find(match, 1).size(), 1u);
}

TEST_P(Pkcs11SessionTest, SensitivePrivateExponentIsAbsentNotAnError) {
    auto session = token_->open_session();
    TestKey key = generate_rsa(*session, 2048, {0x01}, "sensitive", KeyFlags{.sensitive = true, .extractable = true});
    EXPECT_EQ(session->get_bytes(key.private_key, CKA_PRIVATE_EXPONENT), std::nullopt);
    EXPECT_EQ(session->get_bool(key.private_key, CKA_SENSITIVE), true);
    EXPECT_EQ(session->get_bool(key.private_key, CKA_EXTRACTABLE), true);
    EXPECT_EQ(session->get_ulong(key.private_key, CKA_KEY_TYPE), static_cast<CK_ULONG>(CKK_RSA));

    // One batch mixing a readable, a sensitive and an invalid attribute type.
    const std::vector<CK_ATTRIBUTE_TYPE> types = {CKA_MODULUS, CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_EC_POINT,
                                                  CKA_LABEL, CKA_ID};
    auto values = session->get_attributes(key.private_key, types);
    ASSERT_TRUE(values.has(CKA_MODULUS));
    EXPECT_EQ(values.bytes(CKA_MODULUS)->size(), 256u);
    EXPECT_FALSE(values.has(CKA_PRIVATE_EXPONENT));
    EXPECT_FALSE(values.has(CKA_PRIME_1));
    EXPECT_FALSE(values.has(CKA_EC_POINT));
    EXPECT_EQ(values.text(CKA_LABEL), "sensitive");
    EXPECT_EQ(*values.bytes(CKA_ID), pkcs11::Bytes{0x01});
}

// The debug log lines of one kind of call, e.g. "C_GetAttributeValue".
std::vector<std::string> logged_calls(const std::string& log, const std::string& function) {
    std::vector<std::string> calls;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("p11vault: debug: " + function + " ", 0) == 0) calls.push_back(line);
    return calls;
}

// A batch with sensitive and invalid types costs two calls (lengths, values), not two per
// attribute: on NSS softoken each read of CKA_MODULUS costs an integrity check.
TEST_P(Pkcs11SessionTest, MixedBatchIsReadInTwoCalls) {
    auto session = token_->open_session();
    TestKey key = generate_rsa(*session, 2048, {0x01}, "batch", KeyFlags{.sensitive = true, .extractable = true});
    const std::vector<CK_ATTRIBUTE_TYPE> types = {CKA_MODULUS, CKA_PRIVATE_EXPONENT, CKA_EC_POINT, CKA_LABEL,
                                                  CKA_PUBLIC_EXPONENT};
    ::testing::internal::CaptureStderr();
    pkcs11::set_debug_logging(true);
    auto values = session->get_attributes(key.private_key, types);
    pkcs11::set_debug_logging(false);
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(values.bytes(CKA_MODULUS)->size(), 256u);
    EXPECT_EQ(*values.bytes(CKA_PUBLIC_EXPONENT), (pkcs11::Bytes{0x01, 0x00, 0x01}));
    EXPECT_EQ(values.text(CKA_LABEL), "batch");
    EXPECT_FALSE(values.has(CKA_PRIVATE_EXPONENT));
    EXPECT_FALSE(values.has(CKA_EC_POINT));
    EXPECT_EQ(logged_calls(log, "C_GetAttributeValue").size(), 2u) << log;
}

// Long values are read whole, their lengths asked first. Not a call saved by guessing
// buffer sizes: NSS softoken 3.87 copies a session object's value into the caller's
// buffer without checking its length (a 3,000-byte CKA_APPLICATION into a 1,025-byte
// buffer, seen with valgrind), so a guessed buffer is a heap overflow on a real token.
TEST_P(Pkcs11SessionTest, LongValuesAreReadWholeTheirLengthsAskedFirst) {
    auto session = token_->open_session();
    pkcs11::Bytes value(20000);
    for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<std::uint8_t>(i * 7);
    const std::string label(1500, 'L'), application(3000, 'A');
    AttributeTemplate data;
    data.add_class(CKO_DATA).add_bool(CKA_TOKEN, false).add_bool(CKA_PRIVATE, false).add_string(CKA_LABEL, label)
        .add_string(CKA_APPLICATION, application).add_bytes(CKA_VALUE, value);
    CK_OBJECT_HANDLE object = session->create_object(data);

    auto values = session->get_attributes(
        object, std::vector<CK_ATTRIBUTE_TYPE>{CKA_CLASS, CKA_VALUE, CKA_LABEL, CKA_APPLICATION, CKA_TOKEN});
    EXPECT_EQ(values.ulong(CKA_CLASS), static_cast<CK_ULONG>(CKO_DATA));
    EXPECT_EQ(values.bytes(CKA_VALUE) ? *values.bytes(CKA_VALUE) : pkcs11::Bytes{}, value);
    EXPECT_EQ(values.text(CKA_LABEL), label);
    EXPECT_EQ(values.text(CKA_APPLICATION), application);
    EXPECT_EQ(values.boolean(CKA_TOKEN), false);

    // Two calls for the batch: the lengths, then the values.
    ::testing::internal::CaptureStderr();
    pkcs11::set_debug_logging(true);
    values = session->get_attributes(object, std::vector<CK_ATTRIBUTE_TYPE>{CKA_CLASS, CKA_VALUE, CKA_APPLICATION});
    pkcs11::set_debug_logging(false);
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(values.bytes(CKA_VALUE) ? *values.bytes(CKA_VALUE) : pkcs11::Bytes{}, value);
    EXPECT_EQ(values.text(CKA_APPLICATION), application);
    EXPECT_EQ(values.ulong(CKA_CLASS), static_cast<CK_ULONG>(CKO_DATA));
    EXPECT_EQ(logged_calls(log, "C_GetAttributeValue").size(), 2u) << log;
}

// C_WrapKey is called once, with a buffer, not first for the length: tokens do the whole
// wrap to answer a length query. A key that does not fit the first buffer is wrapped
// after the token's CKR_BUFFER_TOO_SMALL, and unwraps to the same value.
TEST_P(Pkcs11SessionTest, WrapIsOneCallAndGrowsTheBufferWhenTheTokenAsks) {
    auto session = token_->open_session();
    TestKey key = generate_rsa(*session, 2048, {0x02}, "wrap-once", {});
    std::vector<std::uint8_t> kek_bytes(32, 0x5a);
    const SecretBytes kek_value(kek_bytes.data(), kek_bytes.size());
    pkcs11::ScopedObject kek(*session, transport::import_session_key(*session, CKK_AES, kek_value,
                                                                     transport::KeyUse::wrap)
                                           .release());
    std::vector<std::uint8_t> large(10000);
    for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<std::uint8_t>(i * 7 + 1);
    AttributeTemplate secret;
    secret.add_class(CKO_SECRET_KEY)
        .add_key_type(CKK_GENERIC_SECRET)
        .add_bool(CKA_TOKEN, false)
        .add_bool(CKA_SENSITIVE, false)
        .add_bool(CKA_EXTRACTABLE, true)
        .add_bytes(CKA_VALUE, large);
    pkcs11::ScopedObject large_key(*session, session->create_object(secret));

    ::testing::internal::CaptureStderr();
    pkcs11::set_debug_logging(true);
    pkcs11::Bytes wrapped_private = session->wrap_key(wrap_mechanism(), kek.get(), key.private_key);
    const std::string private_log = ::testing::internal::GetCapturedStderr();
    ::testing::internal::CaptureStderr();
    pkcs11::Bytes wrapped_large = session->wrap_key(wrap_mechanism(), kek.get(), large_key.get());
    pkcs11::set_debug_logging(false);
    const std::string large_log = ::testing::internal::GetCapturedStderr();

    EXPECT_GT(wrapped_private.size(), 1000u);
    EXPECT_EQ(logged_calls(private_log, "C_WrapKey").size(), 1u) << private_log;
    EXPECT_GT(wrapped_large.size(), large.size());
    // SoftHSM answers CKR_BUFFER_TOO_SMALL with the length it needs; NSS softoken without
    // it, so the length is then asked for once.
    const auto large_calls = logged_calls(large_log, "C_WrapKey");
    ASSERT_EQ(large_calls.size(), GetParam() == Backend::softhsm ? 2u : 3u) << large_log;
    EXPECT_NE(large_calls.front().find("CKR_BUFFER_TOO_SMALL"), std::string::npos) << large_log;
    for (std::size_t i = 1; i < large_calls.size(); ++i)
        EXPECT_NE(large_calls[i].find(": CKR_OK"), std::string::npos) << large_log;

    // The wrapped bytes are the key: decrypted on the host with the known wrapping key.
    const std::optional<SecretBytes> plain =
        GetParam() == Backend::softhsm
            ? std::optional<SecretBytes>(transport::aes_unwrap_pad(kek_value, wrapped_large))
            : pkcs12::cbc_decrypt("AES-256-CBC", kek_value, pkcs11::Bytes(wrap_iv, wrap_iv + 16), wrapped_large.data(),
                                  wrapped_large.size());
    ASSERT_TRUE(plain.has_value());
    EXPECT_EQ(std::vector<std::uint8_t>(plain->data(), plain->data() + plain->size()), large);
}

TEST_P(Pkcs11SessionTest, WrapAndUnwrapWithTheBackendsMechanism) {
    auto session = token_->open_session();
    TestKey key = generate_rsa(*session, 2048, {0x03}, "wrap-me", {});
    pkcs11::ScopedObject kek(*session, generate_aes_session_key(*session));
    pkcs11::Bytes wrapped = session->wrap_key(wrap_mechanism(), kek.get(), key.private_key);
    EXPECT_GT(wrapped.size(), 1000u);

    const pkcs11::Bytes id = {0x33};
    AttributeTemplate restored;
    restored.add_class(CKO_PRIVATE_KEY)
        .add_key_type(CKK_RSA)
        .add_bool(CKA_TOKEN, false)
        .add_bool(CKA_PRIVATE, true)
        .add_bool(CKA_SENSITIVE, true)
        .add_bool(CKA_EXTRACTABLE, false)
        .add_bool(CKA_SIGN, true)
        .add_bytes(CKA_ID, id);
    pkcs11::ScopedObject unwrapped(*session, session->unwrap_key(wrap_mechanism(), kek.get(), wrapped, restored));
    EXPECT_EQ(session->get_bool(unwrapped.get(), CKA_EXTRACTABLE), false);
    EXPECT_EQ(session->get_bytes(unwrapped.get(), CKA_ID), id);

    // Same key: the original public key verifies what the unwrapped key signed.
    Mechanism sha256_rsa(CKM_SHA256_RSA_PKCS);
    pkcs11::Bytes signature = session->sign(sha256_rsa, unwrapped.get(), message);
    EXPECT_TRUE(session->verify(sha256_rsa, key.public_key, message, signature));
    signature[10] ^= 0x01;
    EXPECT_FALSE(session->verify(sha256_rsa, key.public_key, message, signature));
}

TEST_P(Pkcs11SessionTest, EncryptAndDecryptRoundTrip) {
    auto session = token_->open_session();
    pkcs11::ScopedObject key(*session, generate_aes_session_key(*session));
    static const std::uint8_t iv[16] = {};
    Mechanism cbc_pad(CKM_AES_CBC_PAD, iv);
    pkcs11::Bytes ciphertext = session->encrypt(cbc_pad, key.get(), message);
    EXPECT_EQ(ciphertext.size(), 16u);
    SecretBytes plaintext = session->decrypt(cbc_pad, key.get(), ciphertext);
    EXPECT_TRUE(plaintext == SecretBytes(message, sizeof message));

    std::uint8_t random[32] = {};
    session->generate_random(random);
    EXPECT_NE(std::count(std::begin(random), std::end(random), 0), 32);
}

TEST_P(Pkcs11SessionTest, ScopedObjectDestroysUnlessReleased) {
    auto session = token_->open_session();
    AttributeTemplate match;
    match.add_class(CKO_DATA).add_string(CKA_LABEL, "scoped");
    auto make = [&] {
        AttributeTemplate data;
        data.add_class(CKO_DATA).add_bool(CKA_TOKEN, false).add_string(CKA_LABEL, "scoped");
        return session->create_object(data);
    };
    { pkcs11::ScopedObject gone(*session, make()); }
    EXPECT_TRUE(session->find(match).empty());
    CK_OBJECT_HANDLE kept;
    {
        pkcs11::ScopedObject object(*session, make());
        kept = object.release();
    }
    EXPECT_EQ(session->find(match), std::vector<CK_OBJECT_HANDLE>{kept});

    // A failing destroy is reported on stderr, never thrown from the destructor.
    session->destroy_object(kept);
    ::testing::internal::CaptureStderr();
    { pkcs11::ScopedObject stale(*session, kept); }
    std::string warning = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(warning.find("p11vault: warning: could not remove object"), std::string::npos) << warning;
    EXPECT_NE(warning.find("C_DestroyObject: CKR_OBJECT_HANDLE_INVALID"), std::string::npos) << warning;
}

TEST_P(Pkcs11SessionTest, DebugLogNamesCallsAndAttributesButNeverValues) {
    const std::string wrong_pin = "wrong-pin-4321";
    const std::string label = "label-value-not-for-logs";
    const std::string data_value = "data-value-not-for-logs";

    ::testing::internal::CaptureStderr();
    pkcs11::set_debug_logging(true);
    pkcs11::Bytes modulus;
    {
        auto session = token_->open_session(true, false);
        EXPECT_THROW(session->login(SecretBytes::from_text(wrong_pin)), Pkcs11Error);
        session->login(token_->user_pin_secret());
        TestKey key = generate_rsa(*session, 2048, {0x77, 0x66}, label, {});
        const std::vector<CK_ATTRIBUTE_TYPE> types = {CKA_MODULUS, CKA_PRIVATE_EXPONENT};
        modulus = *session->get_attributes(key.private_key, types).bytes(CKA_MODULUS);
        AttributeTemplate data;
        data.add_class(CKO_DATA).add_bool(CKA_TOKEN, false).add_string(CKA_LABEL, label).add_string(CKA_VALUE,
                                                                                                     data_value);
        session->create_object(data);
        AttributeTemplate match;
        match.add_string(CKA_LABEL, label);
        session->find(match);
        pkcs11::ScopedObject kek(*session, generate_aes_session_key(*session));
        pkcs11::Bytes wrapped = session->wrap_key(wrap_mechanism(), kek.get(), key.private_key);
        AttributeTemplate restored;
        restored.add_class(CKO_PRIVATE_KEY)
            .add_key_type(CKK_RSA)
            .add_bool(CKA_TOKEN, false)
            .add_bool(CKA_SENSITIVE, true)
            .add_bool(CKA_EXTRACTABLE, false)
            .add_string(CKA_LABEL, label);
        pkcs11::ScopedObject unwrapped(*session, session->unwrap_key(wrap_mechanism(), kek.get(), wrapped, restored));
    }
    pkcs11::set_debug_logging(false);
    std::string log = ::testing::internal::GetCapturedStderr();

    const std::string mechanism = GetParam() == Backend::softhsm ? "CKM_AES_KEY_WRAP_PAD" : "CKM_AES_CBC_PAD";
    for (const std::string& expected :
         {std::string("p11vault: debug: C_Login: CKR_PIN_INCORRECT\n"), std::string("p11vault: debug: C_Login: CKR_OK\n"),
          std::string("C_GenerateKeyPair CKM_RSA_PKCS_KEY_PAIR_GEN public [CKA_TOKEN,"),
          std::string("C_GetAttributeValue [CKA_MODULUS, CKA_PRIVATE_EXPONENT]: "),
          std::string("C_CreateObject [CKA_CLASS, CKA_TOKEN, CKA_LABEL, CKA_VALUE]: CKR_OK"),
          std::string("C_FindObjectsInit [CKA_LABEL]: CKR_OK"), std::string("C_WrapKey " + mechanism + ": CKR_OK"),
          std::string("C_UnwrapKey " + mechanism +
                      " [CKA_CLASS, CKA_KEY_TYPE, CKA_TOKEN, CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_LABEL]: CKR_OK"),
          std::string("C_DestroyObject: CKR_OK"), std::string("C_CloseSession: CKR_OK")}) {
        EXPECT_NE(log.find(expected), std::string::npos) << "missing \"" << expected << "\" in:\n" << log;
    }
    for (const std::string& secret : {wrong_pin, token_->user_pin(), label, data_value}) {
        EXPECT_EQ(log.find(secret), std::string::npos) << "\"" << secret << "\" leaked into the log";
    }
    // Neither raw nor hex modulus bytes.
    EXPECT_EQ(log.find(std::string(modulus.begin() + 1, modulus.begin() + 9)), std::string::npos);
    std::ostringstream hex;
    for (int i = 1; i < 5; ++i) hex << std::hex << static_cast<int>(modulus[i] >> 4) << (modulus[i] & 0xf);
    EXPECT_EQ(log.find(hex.str()), std::string::npos);

    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
        EXPECT_EQ(line.rfind("p11vault: debug: C_", 0), 0u) << line;
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, Pkcs11SessionTest, all_backends(), BackendParamName());

// ---- Backend quirks that the extraction paths rely on (design/extraction.md) -----------

TEST(Pkcs11SessionQuirks, SoftHsmRefusesCbcPadWrapOfPrivateKeys) {
    TestToken token(Backend::softhsm);
    auto session = token.open_session();
    TestKey key = generate_rsa(*session, 2048, {0x04}, "rsa", {});
    pkcs11::ScopedObject kek(*session, generate_aes_session_key(*session));
    static const std::uint8_t iv[16] = {};
    try {
        session->wrap_key(Mechanism(CKM_AES_CBC_PAD, iv), kek.get(), key.private_key);
        FAIL() << "SoftHSM wrapped with CKM_AES_CBC_PAD";
    } catch (const Pkcs11Error& e) {
        EXPECT_EQ(e.rv(), static_cast<CK_RV>(CKR_MECHANISM_INVALID)) << e.what();
        EXPECT_STREQ(e.what(), "C_WrapKey: CKR_MECHANISM_INVALID (CKM_AES_CBC_PAD)");
    }
}

TEST(Pkcs11SessionQuirks, SoftHsmRefusesToWrapAnUnextractableKeyWithExitCode6) {
    TestToken token(Backend::softhsm);
    auto session = token.open_session();
    TestKey key = generate_rsa(*session, 2048, {0x05}, "locked", KeyFlags{.sensitive = true, .extractable = false});
    pkcs11::ScopedObject kek(*session, generate_aes_session_key(*session));
    try {
        session->wrap_key(Mechanism(CKM_AES_KEY_WRAP_PAD), kek.get(), key.private_key);
        FAIL() << "an unextractable key was wrapped";
    } catch (const Pkcs11Error& e) {
        EXPECT_EQ(e.rv(), static_cast<CK_RV>(CKR_KEY_UNEXTRACTABLE)) << e.what();
        EXPECT_EQ(e.kind(), ErrorKind::refused);
    }
}

TEST(Pkcs11SessionQuirks, SoftHsmHidesComponentsOfNonSensitiveUnextractableKeys) {
    TestToken token(Backend::softhsm);
    auto session = token.open_session();
    TestKey key = generate_rsa(*session, 2048, {0x06}, "odd", KeyFlags{.sensitive = false, .extractable = false});
    EXPECT_EQ(session->get_bytes(key.private_key, CKA_PRIVATE_EXPONENT), std::nullopt);
    EXPECT_TRUE(session->get_bytes(key.private_key, CKA_MODULUS).has_value());
}

TEST(Pkcs11SessionQuirks, SoftHsmNonSensitiveExtractableComponentsAreReadable) {
    TestToken token(Backend::softhsm);
    auto session = token.open_session();
    TestKey key = generate_rsa(*session, 2048, {0x02}, "clear", KeyFlags{.sensitive = false, .extractable = true});
    EXPECT_EQ(session->get_bool(key.private_key, CKA_SENSITIVE), false);
    const std::vector<CK_ATTRIBUTE_TYPE> types = {CKA_MODULUS, CKA_PRIVATE_EXPONENT, CKA_PRIME_1};
    auto values = session->get_attributes(key.private_key, types);
    ASSERT_TRUE(values.has(CKA_PRIVATE_EXPONENT));
    EXPECT_GE(values.bytes(CKA_PRIVATE_EXPONENT)->size(), 250u);
    EXPECT_EQ(values.bytes(CKA_PRIME_1)->size(), 128u);
}

TEST(Pkcs11SessionQuirks, NssMakesEveryTokenPrivateKeySensitive) {
    TestToken token(Backend::nss);
    auto session = token.open_session();
    TestKey key = generate_rsa(*session, 2048, {0x02}, "clear", KeyFlags{.sensitive = false, .extractable = true});
    EXPECT_EQ(session->get_bool(key.private_key, CKA_SENSITIVE), true);
    EXPECT_EQ(session->get_bool(key.private_key, CKA_ALWAYS_SENSITIVE), true);
    EXPECT_EQ(session->get_bytes(key.private_key, CKA_PRIVATE_EXPONENT), std::nullopt);
}

TEST(Pkcs11SessionQuirks, NssRefusesTokenAndPrivateDataObjects) {
    TestToken token(Backend::nss);
    auto session = token.open_session();
    for (auto [on_token, is_private] : {std::pair{true, false}, std::pair{false, true}}) {
        AttributeTemplate data;
        data.add_class(CKO_DATA).add_bool(CKA_TOKEN, on_token).add_bool(CKA_PRIVATE, is_private);
        try {
            session->create_object(data);
            ADD_FAILURE() << "NSS created a data object with CKA_TOKEN=" << on_token << " CKA_PRIVATE=" << is_private;
        } catch (const Pkcs11Error& e) {
            EXPECT_EQ(e.rv(), static_cast<CK_RV>(CKR_ATTRIBUTE_VALUE_INVALID)) << e.what();
        }
    }
}

TEST(Pkcs11SessionQuirks, NssCbcPadWrapOfAPrivateKeyIsPkcs8) {
    TestToken token(Backend::nss);
    auto session = token.open_session();
    TestKey key = generate_ec(*session, "P-256", {0x07}, "ec", {});
    pkcs11::ScopedObject kek(*session, generate_aes_session_key(*session));
    static const std::uint8_t iv[16] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};
    Mechanism cbc_pad(CKM_AES_CBC_PAD, iv);
    pkcs11::Bytes wrapped = session->wrap_key(cbc_pad, kek.get(), key.private_key);
    SecretBytes der = session->decrypt(cbc_pad, kek.get(), wrapped);
    // PrivateKeyInfo: SEQUENCE { INTEGER 0, SEQUENCE { OID id-ecPublicKey, ... } ... }
    const std::uint8_t ec_public_key_oid[] = {0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
    ASSERT_GT(der.size(), 32u);
    EXPECT_EQ(der.data()[0], 0x30);
    auto begin = der.data();
    auto end = der.data() + der.size();
    EXPECT_NE(std::search(begin, end, std::begin(ec_public_key_oid), std::end(ec_public_key_oid)), end);
}

}  // namespace
}  // namespace p11vault::testing
