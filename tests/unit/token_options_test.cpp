// SPDX-License-Identifier: Apache-2.0
// What the query of a --token URI means for the token options (issue 18, item 6): the
// module it names (module-path, module-name) against --module, and its pin-source
// against --pin (src/token.cpp).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "p11vault/error.hpp"
#include "src/token.hpp"

namespace p11vault {
namespace {

constexpr const char* kSoftHsm = "/usr/lib/softhsm/libsofthsm2.so";            // a symlink to ...
constexpr const char* kSoftHsmTarget = "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so";

TokenOptions with_uri(const std::string& uri) {
    TokenOptions options;
    options.token_uri = uri;
    return options;
}

// The error `call` throws: its kind and message.
template <typename Call>
std::pair<ErrorKind, std::string> kind_and_message(Call call) {
    try {
        call();
    } catch (const Error& e) {
        return {e.kind(), e.what()};
    }
    ADD_FAILURE() << "no error";
    return {ErrorKind::failure, "no error thrown"};
}

TEST(TokenOptions, ModulePathOfTheUriSelectsTheModule) {
    EXPECT_EQ(resolve_module_path(with_uri(std::string("pkcs11:token=CA?module-path=") + kSoftHsm)), kSoftHsm);
    // Not checked here: a path that does not load fails at load, exit 5 naming it.
    EXPECT_EQ(resolve_module_path(with_uri("pkcs11:token=CA?module-path=/nonexistent/libx.so")),
              "/nonexistent/libx.so");
}

TEST(TokenOptions, ModuleNameOfTheUriIsAP11KitModuleName) {
    EXPECT_EQ(resolve_module_path(with_uri("pkcs11:token=CA?module-name=softhsm2")), kSoftHsmTarget);
    EXPECT_EQ(resolve_module_path(with_uri("pkcs11:token=CA?module-name=SoftHSM2")), kSoftHsmTarget)
        << "RFC 7512 compares module names case-insensitively";
    const auto [code, message] = kind_and_message([] { resolve_module_path(with_uri("pkcs11:?module-name=no-such")); });
    EXPECT_EQ(code, ErrorKind::token);
    EXPECT_NE(message.find("no PKCS#11 module named \"no-such\""), std::string::npos) << message;
}

TEST(TokenOptions, ModulePathDirectoryWithModuleName) {
    EXPECT_EQ(resolve_module_path(with_uri("pkcs11:?module-path=/usr/lib/softhsm&module-name=softhsm2")), kSoftHsm);
    const auto [code, message] = kind_and_message([] { resolve_module_path(with_uri("pkcs11:?module-path=/usr/lib/softhsm")); });
    EXPECT_EQ(code, ErrorKind::usage);
    EXPECT_NE(message.find("is a directory (/usr/lib/softhsm)"), std::string::npos) << message;
}

TEST(TokenOptions, ModulePathAndModuleNameMustAgree) {
    EXPECT_EQ(resolve_module_path(with_uri(std::string("pkcs11:?module-name=softhsm2&module-path=") + kSoftHsm)),
              kSoftHsm);
    const auto [code, message] = kind_and_message([] {
        resolve_module_path(with_uri(std::string("pkcs11:?module-name=p11-kit-trust&module-path=") + kSoftHsm));
    });
    EXPECT_EQ(code, ErrorKind::usage);
    EXPECT_NE(message.find("name different modules"), std::string::npos) << message;
}

TEST(TokenOptions, ARelativeModulePathIsAUsageError) {
    const auto [code, message] = kind_and_message([] { resolve_module_path(with_uri("pkcs11:?module-path=libsofthsm2.so")); });
    EXPECT_EQ(code, ErrorKind::usage);
    EXPECT_NE(message.find("module-path of --token must be an absolute path"), std::string::npos) << message;
}

TEST(TokenOptions, ModuleOptionAndUriModuleMustAgree) {
    TokenOptions same = with_uri(std::string("pkcs11:token=CA?module-path=") + kSoftHsm);
    same.module = "softhsm2";  // the same library through the symlink
    EXPECT_EQ(resolve_module_path(same), kSoftHsmTarget);

    TokenOptions other = with_uri(std::string("pkcs11:token=CA?module-path=") + kSoftHsm);
    other.module = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so";
    const auto [code, message] = kind_and_message([&] { resolve_module_path(other); });
    EXPECT_EQ(code, ErrorKind::usage);
    EXPECT_NE(message.find("--module /usr/lib/x86_64-linux-gnu/p11-kit-proxy.so and the module of --token"),
              std::string::npos)
        << message;

    // migrate's options are named with their side.
    other.option_prefix = "to-";
    const auto [to_code, to_message] = kind_and_message([&] { resolve_module_path(other); });
    EXPECT_EQ(to_code, ErrorKind::usage);
    EXPECT_NE(to_message.find("--to-module"), std::string::npos) << to_message;
    EXPECT_NE(to_message.find("--to-token"), std::string::npos) << to_message;
}

TEST(TokenOptions, PinSourceOfTheUriIsAFile) {
    EXPECT_EQ(pin_source_for(with_uri("pkcs11:token=CA?pin-source=file:/run/pin")), "file:/run/pin");
    EXPECT_EQ(pin_source_for(with_uri("pkcs11:token=CA?pin-source=file:///run/pin")), "file:/run/pin");
    EXPECT_EQ(pin_source_for(with_uri("pkcs11:token=CA?pin-source=file://localhost/run/pin")), "file:/run/pin");
    EXPECT_EQ(pin_source_for(with_uri("pkcs11:token=CA?pin-source=/run/pin")), "file:/run/pin");
    EXPECT_EQ(pin_source_for(with_uri("pkcs11:token=CA")), std::nullopt);
    TokenOptions pin_only = with_uri("pkcs11:token=CA");
    pin_only.pin_source = "env:PIN";
    EXPECT_EQ(pin_source_for(pin_only), "env:PIN");
}

TEST(TokenOptions, PinSourceThatIsNoFileIsRefusedWithoutItsValue) {
    for (const std::string source : {"env:PIN_4711", "4711", "file://otherhost/4711", "%7C/bin/askpin4711"}) {
        const auto [code, message] =
            kind_and_message([&] { pin_source_for(with_uri("pkcs11:token=CA?pin-source=" + source)); });
        EXPECT_EQ(code, ErrorKind::usage) << source;
        EXPECT_NE(message.find("the pin-source of --token must name a file"), std::string::npos) << message;
        EXPECT_EQ(message.find("4711"), std::string::npos) << message;
    }
}

TEST(TokenOptions, PinAndPinSourceTogetherAreAUsageError) {
    TokenOptions both = with_uri("pkcs11:token=CA?pin-source=file:/run/pin");
    both.pin_source = "env:PIN";
    const auto [code, message] = kind_and_message([&] { check_token_options(both); });
    EXPECT_EQ(code, ErrorKind::usage);
    EXPECT_EQ(message, "--pin and the pin-source of --token both give the PIN: give one of them");
}

}  // namespace
}  // namespace p11vault
