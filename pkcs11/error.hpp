// SPDX-License-Identifier: Apache-2.0
// Pkcs11Error: a PKCS#11 call that did not return CKR_OK. The message names the call
// and the return value ("C_Login: CKR_PIN_INCORRECT"), like Botan's PKCS11_ReturnError.
#pragma once

#include <p11-kit/pkcs11.h>

#include <initializer_list>
#include <string>

#include "p11vault/error.hpp"

namespace p11vault::pkcs11 {

class Pkcs11Error : public Error {
public:
    Pkcs11Error(std::string function, CK_RV rv);
    Pkcs11Error(std::string function, CK_RV rv, const std::string& hint);
    CK_RV rv() const noexcept { return rv_; }
    const std::string& function() const noexcept { return function_; }

private:
    std::string function_;
    CK_RV rv_;
};

// "CKR_PIN_INCORRECT", or "CKR_0x80000001" for vendor codes.
std::string rv_name(CK_RV rv);
// "CKM_AES_CBC_PAD", or "CKM_0x..." for unknown ones.
std::string mechanism_name(CK_MECHANISM_TYPE mechanism);
// "CKA_MODULUS", or "CKA_0x..." for unknown ones.
std::string attribute_name(CK_ATTRIBUTE_TYPE attribute);
// "CKK_RSA", ...
std::string key_type_name(CK_KEY_TYPE key_type);
// "CKO_PRIVATE_KEY", ...
std::string object_class_name(CK_OBJECT_CLASS object_class);

// The exit code a failed call maps to: PIN, token and slot failures are token errors (5),
// a key that may not leave the token is a refusal (6), anything else is a token error too.
ErrorKind error_kind_for(CK_RV rv);

// The single checked call path. Every PKCS#11 function goes through here: with debug
// logging on, each call is logged with its result (never with argument values, so a PIN
// or key cannot reach the log); on failure it throws Pkcs11Error.
void check(CK_RV rv, const char* function);
// `detail` names what the call worked on (a mechanism, attribute type names); it is
// logged and becomes the hint of the error, so it must never hold a value.
void check(CK_RV rv, const char* function, const std::string& detail);
// Like check(), but the return values in `expected` are outcomes the caller handles
// (CKR_USER_ALREADY_LOGGED_IN, CKR_ATTRIBUTE_SENSITIVE, ...): logged and returned.
CK_RV check_allowing(CK_RV rv, const char* function, std::initializer_list<CK_RV> expected,
                     const std::string& detail = {});

// Logs one call and its result (debug logging only), for callers that handle the
// result themselves.
void log_call(CK_RV rv, const char* function, const std::string& detail = {});

// Debug logging of every call (`--verbose`, P11VAULT_DEBUG=1). Lines go to stderr,
// prefixed "p11vault: debug: ".
void set_debug_logging(bool enabled);
bool debug_logging();
void debug_log(const std::string& line);

}  // namespace p11vault::pkcs11
