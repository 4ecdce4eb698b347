// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/session.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "pkcs11/error.hpp"

namespace p11vault::pkcs11 {
namespace {

CK_ULONG ulong_size(std::size_t size) { return static_cast<CK_ULONG>(size); }
CK_BYTE* mutable_bytes(std::span<const std::uint8_t> data) {
    // PKCS#11 2.40 declares input buffers without const; modules do not write to them.
    return const_cast<CK_BYTE*>(data.data());
}

std::string describe_types(std::span<const CK_ATTRIBUTE_TYPE> types) {
    std::string text = "[";
    for (std::size_t i = 0; i < types.size(); ++i) {
        if (i != 0) text += ", ";
        text += attribute_name(types[i]);
    }
    return text + "]";
}

std::string describe_call(const Mechanism& mechanism, const AttributeTemplate* attributes = nullptr) {
    std::string text = mechanism_name(mechanism.type());
    if (attributes != nullptr) text += " " + attributes->describe();
    return text;
}

// The first output buffer of C_WrapKey: a PKCS#8 RSA-8192 key with padding is ~4.9 KiB.
constexpr std::size_t first_wrap_buffer_size = 8192;

// The expected "absent" answers of C_GetAttributeValue (pkcs11-provider's defensive read).
constexpr std::initializer_list<CK_RV> absent_codes = {CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID};

std::optional<CK_ULONG> decode_ulong(const Bytes& value, CK_ATTRIBUTE_TYPE type) {
    if (value.size() != sizeof(CK_ULONG)) {
        throw Error(ErrorKind::token, "the token returned " + attribute_name(type) + " with " +
                                         std::to_string(value.size()) + " bytes instead of " +
                                         std::to_string(sizeof(CK_ULONG)));
    }
    CK_ULONG out;
    std::memcpy(&out, value.data(), sizeof out);
    return out;
}

std::optional<bool> decode_bool(const Bytes& value, CK_ATTRIBUTE_TYPE type) {
    if (value.size() != sizeof(CK_BBOOL)) {
        throw Error(ErrorKind::token, "the token returned " + attribute_name(type) + " with " +
                                         std::to_string(value.size()) + " bytes instead of 1");
    }
    return value[0] != CK_FALSE;
}

// A module's answer of `length` bytes for `what` (an attribute, a wrapped key), refused
// beyond max_value_length before anything is allocated for it.
void check_length(const Module& module, const char* function, CK_ULONG length, const std::string& what) {
    if (length <= max_value_length) return;
    throw Error(ErrorKind::token, "PKCS#11 module " + module.path() + ": " + function + " reports " +
                                     std::to_string(length) + " bytes for " + what +
                                     "; p11vault refuses values over " + std::to_string(max_value_length) +
                                     " bytes");
}

[[noreturn]] void give_up_on_buffer(const Module& module, const char* function, const std::string& detail) {
    throw Pkcs11Error(function, CKR_BUFFER_TOO_SMALL,
                      "module " + module.path() + (detail.empty() ? "" : ", " + detail) + ": answered " +
                          std::to_string(max_size_retries) +
                          " times in a row for a buffer of the length it asked for; p11vault gives up");
}

// The output calls that take a length query first (C_Sign, C_Encrypt, C_Decrypt): the
// query, then fills with the length asked for, retried a bounded number of times.
template <typename Buffer, typename Call>
Buffer two_call_output(const Module& module, const char* function, const std::string& detail, Call call) {
    CK_ULONG length = 0;
    check(call(nullptr, &length), function, detail);
    for (int attempt = 0; attempt < max_size_retries; ++attempt) {
        check_length(module, function, length, "its output");
        Buffer out(length);
        const CK_ULONG room = length;
        CK_RV rv = check_allowing(call(out.data(), &length), function, {CKR_BUFFER_TOO_SMALL}, detail);
        if (rv == CKR_OK) {
            if (length > room) {
                throw Error(ErrorKind::token, "PKCS#11 module " + module.path() + ": " + function + " reports " +
                                                 std::to_string(length) + " bytes written into a buffer of " +
                                                 std::to_string(room));
            }
            out.resize(length);
            return out;
        }
    }
    give_up_on_buffer(module, function, detail);
}

}  // namespace

// ---- AttributeValues -------------------------------------------------------------------

const Bytes* AttributeValues::bytes(CK_ATTRIBUTE_TYPE type) const {
    auto found = values_.find(type);
    return found == values_.end() ? nullptr : &found->second;
}

std::optional<CK_ULONG> AttributeValues::ulong(CK_ATTRIBUTE_TYPE type) const {
    const Bytes* value = bytes(type);
    if (value == nullptr) return std::nullopt;
    return decode_ulong(*value, type);
}

std::optional<bool> AttributeValues::boolean(CK_ATTRIBUTE_TYPE type) const {
    const Bytes* value = bytes(type);
    if (value == nullptr) return std::nullopt;
    return decode_bool(*value, type);
}

std::optional<std::string> AttributeValues::text(CK_ATTRIBUTE_TYPE type) const {
    const Bytes* value = bytes(type);
    if (value == nullptr) return std::nullopt;
    return std::string(value->begin(), value->end());
}

// ---- Session ---------------------------------------------------------------------------

Session::Session(std::shared_ptr<Module> module, CK_SLOT_ID slot, bool read_write)
    : module_(std::move(module)), f_(module_->functions()), slot_(slot), read_write_(read_write) {
    CK_FLAGS flags = CKF_SERIAL_SESSION | (read_write ? CKF_RW_SESSION : 0);
    check(f_->C_OpenSession(slot_, flags, nullptr, nullptr, &handle_), "C_OpenSession",
          "slot " + std::to_string(slot_) + (read_write ? " read-write" : " read-only"));
}

Session::~Session() {
    if (handle_ == CK_INVALID_HANDLE) return;
    // Closing cannot be retried and the caller is already unwinding or done: log only.
    CK_RV rv = f_->C_CloseSession(handle_);
    log_call(rv, "C_CloseSession");
}

void Session::login(const SecretBytes& pin, UserType who) {
    // An empty PIN (NSS softoken's fresh database) still needs a valid pointer.
    static CK_UTF8CHAR empty[1] = {0};
    CK_UTF8CHAR* text = pin.empty() ? empty : const_cast<CK_UTF8CHAR*>(pin.data());
    CK_USER_TYPE user = who == UserType::user ? CKU_USER : CKU_SO;
    check_allowing(f_->C_Login(handle_, user, text, ulong_size(pin.size())), "C_Login",
                   {CKR_USER_ALREADY_LOGGED_IN}, who == UserType::user ? "" : "CKU_SO");
}

void Session::logout() {
    // Logged out already is the state the caller asked for.
    check_allowing(f_->C_Logout(handle_), "C_Logout", {CKR_USER_NOT_LOGGED_IN});
}

void Session::init_pin(const SecretBytes& pin) {
    static CK_UTF8CHAR empty[1] = {0};
    CK_UTF8CHAR* text = pin.empty() ? empty : const_cast<CK_UTF8CHAR*>(pin.data());
    check(f_->C_InitPIN(handle_, text, ulong_size(pin.size())), "C_InitPIN");
}

CK_STATE Session::state() const {
    CK_SESSION_INFO info{};
    check(f_->C_GetSessionInfo(handle_, &info), "C_GetSessionInfo");
    return info.state;
}

const MechanismList& Session::mechanisms() {
    if (!mechanisms_) mechanisms_.emplace(module_->mechanisms(slot_));
    return *mechanisms_;
}

std::vector<CK_OBJECT_HANDLE> Session::find(AttributeTemplate& match, std::size_t max_objects) {
    check(f_->C_FindObjectsInit(handle_, match.data(), match.count()), "C_FindObjectsInit", match.describe());
    std::vector<CK_OBJECT_HANDLE> found;
    try {
        CK_OBJECT_HANDLE batch[64];
        for (;;) {
            CK_ULONG wanted = sizeof batch / sizeof batch[0];
            if (max_objects != 0) wanted = std::min<CK_ULONG>(wanted, ulong_size(max_objects - found.size()));
            CK_ULONG count = 0;
            check(f_->C_FindObjects(handle_, batch, wanted, &count), "C_FindObjects");
            if (count > wanted) {
                throw Error(ErrorKind::token, "PKCS#11 module " + module_->path() + ": C_FindObjects reports " +
                                                 std::to_string(count) + " objects found into room for " +
                                                 std::to_string(wanted));
            }
            found.insert(found.end(), batch, batch + count);
            if (count == 0 || (max_objects != 0 && found.size() >= max_objects)) break;
            // A search that never ends (the module answers with objects for ever) is
            // refused rather than collected until memory runs out.
            if (found.size() > max_found_objects) {
                throw Error(ErrorKind::token, "PKCS#11 module " + module_->path() + ": C_FindObjects found more "
                                                 "than " + std::to_string(max_found_objects) +
                                                 " objects in one search; p11vault refuses a search that does "
                                                 "not end");
            }
        }
    } catch (...) {
        // Leave the session usable for the caller's next search.
        log_call(f_->C_FindObjectsFinal(handle_), "C_FindObjectsFinal");
        throw;
    }
    check(f_->C_FindObjectsFinal(handle_), "C_FindObjectsFinal");
    return found;
}

AttributeValues Session::get_attributes(CK_OBJECT_HANDLE object, std::span<const CK_ATTRIBUTE_TYPE> types) {
    AttributeValues out;
    if (types.empty()) return out;
    const std::string names = describe_types(types);

    // One round trip for the lengths, one for the values: on some tokens every read of
    // an object costs real work (NSS softoken checks the integrity MAC of CKA_MODULUS on
    // each read), so per-attribute reads would multiply it. PKCS#11 (since 2.11) has the
    // token fill in every entry when it answers CKR_ATTRIBUTE_SENSITIVE or
    // CKR_ATTRIBUTE_TYPE_INVALID, with CK_UNAVAILABLE_INFORMATION for the refused ones.
    // Tokens that stop at the first refused entry leave the marker below in the rest;
    // for them, and whenever the batch answers in any other unexpected way, every
    // attribute is read on its own.
    constexpr CK_ULONG untouched = CK_UNAVAILABLE_INFORMATION - 1;
    std::vector<CK_ATTRIBUTE> lengths(types.size());
    for (std::size_t i = 0; i < types.size(); ++i) lengths[i] = CK_ATTRIBUTE{types[i], nullptr, untouched};
    CK_RV rv = check_allowing(f_->C_GetAttributeValue(handle_, object, lengths.data(), ulong_size(lengths.size())),
                              "C_GetAttributeValue", absent_codes, names);
    const bool every_entry_answered =
        std::none_of(lengths.begin(), lengths.end(), [](const CK_ATTRIBUTE& a) { return a.ulValueLen == untouched; });
    if (every_entry_answered) {
        std::vector<CK_ATTRIBUTE> batch;
        std::vector<Bytes> buffers;
        batch.reserve(types.size());
        buffers.reserve(types.size());
        for (const CK_ATTRIBUTE& entry : lengths) {
            if (entry.ulValueLen == CK_UNAVAILABLE_INFORMATION) continue;
            check_length(*module_, "C_GetAttributeValue", entry.ulValueLen, attribute_name(entry.type));
            Bytes& buffer = buffers.emplace_back(entry.ulValueLen);
            batch.push_back(CK_ATTRIBUTE{entry.type, buffer.empty() ? nullptr : buffer.data(), entry.ulValueLen});
        }
        if (batch.empty()) return out;
        rv = check_allowing(f_->C_GetAttributeValue(handle_, object, batch.data(), ulong_size(batch.size())),
                            "C_GetAttributeValue",
                            {CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID, CKR_BUFFER_TOO_SMALL}, names);
        if (rv == CKR_OK) {
            for (std::size_t i = 0; i < batch.size(); ++i) {
                if (batch[i].ulValueLen == CK_UNAVAILABLE_INFORMATION || batch[i].ulValueLen > buffers[i].size())
                    continue;
                buffers[i].resize(batch[i].ulValueLen);
                out.set(batch[i].type, std::move(buffers[i]));
            }
            return out;
        }
    }
    for (CK_ATTRIBUTE_TYPE type : types) {
        if (auto value = get_bytes(object, type)) out.set(type, std::move(*value));
    }
    return out;
}

std::optional<Bytes> Session::get_bytes(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
    const std::string name = attribute_name(type);
    // Retried when the value grows between the calls (another session set it), a
    // bounded number of times.
    for (int attempt = 0; attempt < max_size_retries; ++attempt) {
        CK_ATTRIBUTE attribute{type, nullptr, 0};
        CK_RV rv = check_allowing(f_->C_GetAttributeValue(handle_, object, &attribute, 1), "C_GetAttributeValue",
                                  absent_codes, "[" + name + "]");
        if (rv != CKR_OK || attribute.ulValueLen == CK_UNAVAILABLE_INFORMATION) return std::nullopt;
        check_length(*module_, "C_GetAttributeValue", attribute.ulValueLen, name);
        Bytes value(attribute.ulValueLen);
        if (value.empty()) return value;
        attribute.pValue = value.data();
        rv = check_allowing(f_->C_GetAttributeValue(handle_, object, &attribute, 1), "C_GetAttributeValue",
                            {CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID, CKR_BUFFER_TOO_SMALL},
                            "[" + name + "]");
        if (rv == CKR_BUFFER_TOO_SMALL) continue;
        if (rv != CKR_OK || attribute.ulValueLen == CK_UNAVAILABLE_INFORMATION) return std::nullopt;
        if (attribute.ulValueLen > value.size()) continue;  // more than it wrote: ask again
        value.resize(attribute.ulValueLen);
        return value;
    }
    give_up_on_buffer(*module_, "C_GetAttributeValue", "[" + name + "]");
}

std::optional<SecretBytes> Session::get_secret(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
    const std::string name = "[" + attribute_name(type) + "]";
    CK_ATTRIBUTE attribute{type, nullptr, 0};
    CK_RV rv = check_allowing(f_->C_GetAttributeValue(handle_, object, &attribute, 1), "C_GetAttributeValue",
                              absent_codes, name);
    if (rv != CKR_OK || attribute.ulValueLen == CK_UNAVAILABLE_INFORMATION) return std::nullopt;
    check_length(*module_, "C_GetAttributeValue", attribute.ulValueLen, attribute_name(type));
    SecretBytes value(attribute.ulValueLen);
    attribute.pValue = value.data();
    rv = check_allowing(f_->C_GetAttributeValue(handle_, object, &attribute, 1), "C_GetAttributeValue", absent_codes,
                        name);
    if (rv != CKR_OK || attribute.ulValueLen == CK_UNAVAILABLE_INFORMATION || attribute.ulValueLen > value.size())
        return std::nullopt;
    value.resize(attribute.ulValueLen);
    return value;
}

std::optional<CK_ULONG> Session::get_ulong(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
    auto value = get_bytes(object, type);
    if (!value) return std::nullopt;
    return decode_ulong(*value, type);
}

std::optional<bool> Session::get_bool(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
    auto value = get_bytes(object, type);
    if (!value) return std::nullopt;
    return decode_bool(*value, type);
}

void Session::set_attributes(CK_OBJECT_HANDLE object, AttributeTemplate& values) {
    check(f_->C_SetAttributeValue(handle_, object, values.data(), values.count()), "C_SetAttributeValue",
          values.describe());
}

CK_OBJECT_HANDLE Session::create_object(AttributeTemplate& attributes) {
    CK_OBJECT_HANDLE object = CK_INVALID_HANDLE;
    check(f_->C_CreateObject(handle_, attributes.data(), attributes.count(), &object), "C_CreateObject",
          attributes.describe());
    return object;
}

void Session::destroy_object(CK_OBJECT_HANDLE object) {
    check(f_->C_DestroyObject(handle_, object), "C_DestroyObject");
}

CK_OBJECT_HANDLE Session::generate_key(Mechanism mechanism, AttributeTemplate& attributes) {
    CK_MECHANISM m = mechanism.get();
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    check(f_->C_GenerateKey(handle_, &m, attributes.data(), attributes.count(), &key), "C_GenerateKey",
          describe_call(mechanism, &attributes));
    return key;
}

std::pair<CK_OBJECT_HANDLE, CK_OBJECT_HANDLE> Session::generate_key_pair(Mechanism mechanism,
                                                                         AttributeTemplate& public_template,
                                                                         AttributeTemplate& private_template) {
    CK_MECHANISM m = mechanism.get();
    CK_OBJECT_HANDLE public_key = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE private_key = CK_INVALID_HANDLE;
    check(f_->C_GenerateKeyPair(handle_, &m, public_template.data(), public_template.count(),
                                private_template.data(), private_template.count(), &public_key, &private_key),
          "C_GenerateKeyPair",
          mechanism_name(mechanism.type()) + " public " + public_template.describe() + " private " +
              private_template.describe());
    return {public_key, private_key};
}

Bytes Session::wrap_key(Mechanism mechanism, CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key) {
    CK_MECHANISM m = mechanism.get();
    const std::string detail = describe_call(mechanism);
    // No separate length query: tokens do the whole wrap to answer it (NSS softoken
    // decrypts the key from its database), which would double the cost of every backup.
    // The first buffer holds a wrapped RSA-8192 key; a token that needs more says so
    // with CKR_BUFFER_TOO_SMALL and the length, as PKCS#11 requires.
    Bytes wrapped(first_wrap_buffer_size);
    for (int attempt = 0; attempt < max_size_retries; ++attempt) {
        CK_ULONG length = ulong_size(wrapped.size());
        CK_RV rv = check_allowing(f_->C_WrapKey(handle_, &m, wrapping_key, key, wrapped.data(), &length),
                                  "C_WrapKey", {CKR_BUFFER_TOO_SMALL}, detail);
        if (rv == CKR_OK) {
            if (length > wrapped.size()) {
                throw Error(ErrorKind::token, "PKCS#11 module " + module_->path() + ": C_WrapKey reports " +
                                                 std::to_string(length) + " bytes written into a buffer of " +
                                                 std::to_string(wrapped.size()));
            }
            wrapped.resize(length);
            return wrapped;
        }
        // A token that does not report the length it needs: ask for it.
        if (length <= wrapped.size()) check(f_->C_WrapKey(handle_, &m, wrapping_key, key, nullptr, &length),
                                            "C_WrapKey", detail);
        if (length <= wrapped.size())
            throw Pkcs11Error("C_WrapKey", CKR_BUFFER_TOO_SMALL,
                              detail + ": the token asks for a larger buffer but reports no larger length");
        check_length(*module_, "C_WrapKey", length, "the wrapped key");
        wrapped.resize(length);
    }
    give_up_on_buffer(*module_, "C_WrapKey", detail);
}

CK_OBJECT_HANDLE Session::unwrap_key(Mechanism mechanism, CK_OBJECT_HANDLE unwrapping_key,
                                     std::span<const std::uint8_t> wrapped, AttributeTemplate& attributes) {
    CK_MECHANISM m = mechanism.get();
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    check(f_->C_UnwrapKey(handle_, &m, unwrapping_key, mutable_bytes(wrapped), ulong_size(wrapped.size()),
                          attributes.data(), attributes.count(), &key),
          "C_UnwrapKey", describe_call(mechanism, &attributes));
    return key;
}

CK_OBJECT_HANDLE Session::derive_key(Mechanism mechanism, CK_OBJECT_HANDLE base_key,
                                     AttributeTemplate& attributes) {
    CK_MECHANISM m = mechanism.get();
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    check(f_->C_DeriveKey(handle_, &m, base_key, attributes.data(), attributes.count(), &key), "C_DeriveKey",
          describe_call(mechanism, &attributes));
    return key;
}

Bytes Session::sign(Mechanism mechanism, CK_OBJECT_HANDLE key, std::span<const std::uint8_t> data) {
    CK_MECHANISM m = mechanism.get();
    const std::string detail = describe_call(mechanism);
    check(f_->C_SignInit(handle_, &m, key), "C_SignInit", detail);
    // A length query and CKR_BUFFER_TOO_SMALL leave the operation active (PKCS#11 5.2).
    return two_call_output<Bytes>(*module_, "C_Sign", detail, [&](CK_BYTE* out, CK_ULONG* length) {
        return f_->C_Sign(handle_, mutable_bytes(data), ulong_size(data.size()), out, length);
    });
}

bool Session::verify(Mechanism mechanism, CK_OBJECT_HANDLE key, std::span<const std::uint8_t> data,
                     std::span<const std::uint8_t> signature) {
    CK_MECHANISM m = mechanism.get();
    const std::string detail = describe_call(mechanism);
    check(f_->C_VerifyInit(handle_, &m, key), "C_VerifyInit", detail);
    CK_RV rv = check_allowing(f_->C_Verify(handle_, mutable_bytes(data), ulong_size(data.size()),
                                           mutable_bytes(signature), ulong_size(signature.size())),
                              "C_Verify", {CKR_SIGNATURE_INVALID, CKR_SIGNATURE_LEN_RANGE}, detail);
    return rv == CKR_OK;
}

Bytes Session::encrypt(Mechanism mechanism, CK_OBJECT_HANDLE key, std::span<const std::uint8_t> data) {
    CK_MECHANISM m = mechanism.get();
    const std::string detail = describe_call(mechanism);
    check(f_->C_EncryptInit(handle_, &m, key), "C_EncryptInit", detail);
    return two_call_output<Bytes>(*module_, "C_Encrypt", detail, [&](CK_BYTE* out, CK_ULONG* length) {
        return f_->C_Encrypt(handle_, mutable_bytes(data), ulong_size(data.size()), out, length);
    });
}

SecretBytes Session::decrypt(Mechanism mechanism, CK_OBJECT_HANDLE key, std::span<const std::uint8_t> data) {
    CK_MECHANISM m = mechanism.get();
    const std::string detail = describe_call(mechanism);
    check(f_->C_DecryptInit(handle_, &m, key), "C_DecryptInit", detail);
    return two_call_output<SecretBytes>(*module_, "C_Decrypt", detail, [&](CK_BYTE* out, CK_ULONG* length) {
        return f_->C_Decrypt(handle_, mutable_bytes(data), ulong_size(data.size()), out, length);
    });
}

void Session::generate_random(std::span<std::uint8_t> out) {
    if (out.empty()) return;
    check(f_->C_GenerateRandom(handle_, out.data(), ulong_size(out.size())), "C_GenerateRandom");
}

// ---- ScopedObject ----------------------------------------------------------------------

void Session::report_cleanup_failure(std::string failure) noexcept {
    try {
        if (cleanup_listener_) {
            cleanup_listener_(failure);
        } else {
            cleanup_failures_.push_back(std::move(failure));
        }
    } catch (...) {
        // Out of memory, or a listener that threw: nothing is left to report it with, and
        // this runs from destructors, which must not throw.
    }
}

void ScopedObject::destroy() noexcept {
    if (handle_ == CK_INVALID_HANDLE) return;
    const CK_OBJECT_HANDLE handle = std::exchange(handle_, CK_INVALID_HANDLE);
    try {
        session_->destroy_object(handle);
    } catch (const Error& e) {
        // Not silent: a leftover object is something the operator must know about.
        try {
            session_->report_cleanup_failure("could not remove object " + std::to_string(handle) +
                                             " from the token: " + e.what());
        } catch (...) {
            // The text could not be built (out of memory); see report_cleanup_failure.
        }
    }
}

}  // namespace p11vault::pkcs11
