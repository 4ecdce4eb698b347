// SPDX-License-Identifier: Apache-2.0
// pkcs11::ScopedObject: destroys its object unless released, moves ownership, and never
// throws or writes to stderr when the destroy fails (the session records the failure).
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pkcs11/session.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using pkcs11::AttributeTemplate;

class ScopedObjectTest : public ::testing::TestWithParam<Backend> {
protected:
    void SetUp() override { token_ = std::make_unique<TestToken>(GetParam()); }
    void TearDown() override { token_.reset(); }

    std::unique_ptr<TestToken> token_;
};

TEST_P(ScopedObjectTest, DestroysUnlessReleased) {
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

    // A failing destroy is never thrown from the destructor, nor written to stderr: the
    // session keeps it for its owner to report.
    session->destroy_object(kept);
    ::testing::internal::CaptureStderr();
    { pkcs11::ScopedObject stale(*session, kept); }
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
    std::vector<std::string> failures = session->take_cleanup_failures();
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_EQ(failures[0].rfind("could not remove object " + std::to_string(kept) + " from the token: ", 0), 0u)
        << failures[0];
    EXPECT_NE(failures[0].find("C_DestroyObject: CKR_OBJECT_HANDLE_INVALID"), std::string::npos) << failures[0];
    EXPECT_TRUE(session->take_cleanup_failures().empty());

    // With a listener, each failure goes to it as it happens and is not kept.
    std::vector<std::string> heard;
    session->on_cleanup_failure([&](const std::string& failure) { heard.push_back(failure); });
    { pkcs11::ScopedObject stale(*session, kept); }
    ASSERT_EQ(heard.size(), 1u);
    EXPECT_NE(heard[0].find("C_DestroyObject: CKR_OBJECT_HANDLE_INVALID"), std::string::npos) << heard[0];
    EXPECT_TRUE(session->take_cleanup_failures().empty());
}

TEST_P(ScopedObjectTest, MovesOwnership) {
    auto session = token_->open_session();
    AttributeTemplate match;
    match.add_class(CKO_DATA).add_string(CKA_LABEL, "moved");
    auto make = [&] {
        AttributeTemplate data;
        data.add_class(CKO_DATA).add_bool(CKA_TOKEN, false).add_string(CKA_LABEL, "moved");
        return session->create_object(data);
    };
    std::optional<pkcs11::ScopedObject> target;
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    {
        pkcs11::ScopedObject source(*session, make());
        handle = source.get();
        target.emplace(std::move(source));
        EXPECT_EQ(source.get(), CK_INVALID_HANDLE);  // NOLINT(bugprone-use-after-move): the contract under test
    }
    // The moved-from source destroyed nothing.
    EXPECT_EQ(target->get(), handle);
    EXPECT_EQ(session->find(match), std::vector<CK_OBJECT_HANDLE>{handle});

    // Assigning destroys what the target held and takes the other's object.
    pkcs11::ScopedObject other(*session, make());
    const CK_OBJECT_HANDLE other_handle = other.get();
    *target = std::move(other);
    EXPECT_EQ(target->get(), other_handle);
    EXPECT_EQ(session->find(match), std::vector<CK_OBJECT_HANDLE>{other_handle});
    target.reset();
    EXPECT_TRUE(session->find(match).empty());
    EXPECT_TRUE(session->take_cleanup_failures().empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, ScopedObjectTest, all_backends(), BackendParamName());

}  // namespace
}  // namespace p11vault::testing
