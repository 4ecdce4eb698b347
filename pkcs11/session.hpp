// SPDX-License-Identifier: Apache-2.0
// Session: one PKCS#11 session on one slot, and every operation p11vault performs in it.
//
// Login and logout are explicit calls (no logout in the destructor, which would hide
// errors and break sessions shared by other users of the module). The destructor closes
// the session and only logs a failure.
//
// Attribute reads are defensive, after pkcs11-provider: the length is asked first, and
// CKR_ATTRIBUTE_SENSITIVE / CKR_ATTRIBUTE_TYPE_INVALID mean "absent", never an abort. A
// batch costs two calls whatever it holds; one attribute at a time only for a token that
// does not fill in every entry of a batch it partly refuses. Never one call with buffers
// of a guessed size: NSS softoken 3.87 copies a session object's value without checking
// the buffer's length (a heap overflow; see LongValuesAreReadWholeTheirLengthsAskedFirst).
#pragma once

#include <p11-kit/pkcs11.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "pkcs11/attributes.hpp"
#include "pkcs11/module.hpp"
#include "p11vault/secret.hpp"

namespace p11vault::pkcs11 {

// A mechanism with an owned parameter block. For parameters that hold pointers (e.g.
// CK_PKCS5_PBKD2_PARAMS) the caller keeps the pointed-to data alive and passes the
// struct bytes through `raw`.
class Mechanism {
public:
    explicit Mechanism(CK_MECHANISM_TYPE type) : type_(type) {}
    Mechanism(CK_MECHANISM_TYPE type, std::span<const std::uint8_t> parameter)
        : type_(type), parameter_(parameter.begin(), parameter.end()) {}
    template <typename Params>
    static Mechanism with_struct(CK_MECHANISM_TYPE type, const Params& params) {
        auto* p = reinterpret_cast<const std::uint8_t*>(&params);
        return Mechanism(type, std::span<const std::uint8_t>(p, sizeof(Params)));
    }
    CK_MECHANISM_TYPE type() const { return type_; }
    std::span<const std::uint8_t> parameter() const { return parameter_; }
    CK_MECHANISM get() {
        return CK_MECHANISM{type_, parameter_.empty() ? nullptr : parameter_.data(),
                            static_cast<CK_ULONG>(parameter_.size())};
    }

private:
    CK_MECHANISM_TYPE type_;
    Bytes parameter_;
};

// Values read from one object in one C_GetAttributeValue round trip; attributes the
// token refused (sensitive, invalid type) are simply absent.
class AttributeValues {
public:
    bool has(CK_ATTRIBUTE_TYPE type) const { return values_.count(type) != 0; }
    const Bytes* bytes(CK_ATTRIBUTE_TYPE type) const;
    std::optional<CK_ULONG> ulong(CK_ATTRIBUTE_TYPE type) const;
    std::optional<bool> boolean(CK_ATTRIBUTE_TYPE type) const;
    std::optional<std::string> text(CK_ATTRIBUTE_TYPE type) const;
    void set(CK_ATTRIBUTE_TYPE type, Bytes value) { values_[type] = std::move(value); }

private:
    std::map<CK_ATTRIBUTE_TYPE, Bytes> values_;
};

enum class UserType { user, security_officer };

// Limits on what a module may answer (module.hpp has the list limits): the length of one
// attribute value or one output (wrapped key, signature, ciphertext) and the objects one
// search may find. Far beyond any real token (a certificate is a few KiB, an RSA-16384
// private key in PKCS#8 about 10 KiB), near enough that a module claiming more is
// refused before p11vault allocates it.
inline constexpr CK_ULONG max_value_length = CK_ULONG{16} << 20;
inline constexpr std::size_t max_found_objects = std::size_t{1} << 20;

class Session {
public:
    Session(std::shared_ptr<Module> module, CK_SLOT_ID slot, bool read_write);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    Module& module() const { return *module_; }
    const std::shared_ptr<Module>& shared_module() const { return module_; }
    CK_SLOT_ID slot() const { return slot_; }
    CK_SESSION_HANDLE handle() const { return handle_; }
    bool read_write() const { return read_write_; }

    // CKR_USER_ALREADY_LOGGED_IN is success (another session of this process logged in).
    void login(const SecretBytes& pin, UserType who = UserType::user);
    void logout();
    void init_pin(const SecretBytes& pin);  // as SO: set the user PIN
    CK_STATE state() const;

    // The slot's mechanisms, read on first use and kept for the session's life (a token
    // does not change them while a session is open): every "does the token offer" asks here.
    const MechanismList& mechanisms();
    bool offers(CK_MECHANISM_TYPE type, CK_FLAGS flag) { return mechanisms().offers(type, flag); }
    // Takes the list another session of the same slot read, instead of asking the token
    // again (a parallel run's worker sessions: one C_GetMechanismInfo per mechanism each).
    void adopt_mechanisms(const MechanismList& list) { mechanisms_ = list; }

    std::vector<CK_OBJECT_HANDLE> find(AttributeTemplate& match, std::size_t max_objects = 0);

    AttributeValues get_attributes(CK_OBJECT_HANDLE object, std::span<const CK_ATTRIBUTE_TYPE> types);
    std::optional<Bytes> get_bytes(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);
    std::optional<CK_ULONG> get_ulong(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);
    std::optional<bool> get_bool(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);
    // A private key component of a non-sensitive key, read straight into SecretBytes so
    // the value never sits in an ordinary buffer. Absent when the token refuses.
    std::optional<SecretBytes> get_secret(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);
    void set_attributes(CK_OBJECT_HANDLE object, AttributeTemplate& values);

    CK_OBJECT_HANDLE create_object(AttributeTemplate& attributes);
    void destroy_object(CK_OBJECT_HANDLE object);

    CK_OBJECT_HANDLE generate_key(Mechanism mechanism, AttributeTemplate& attributes);
    std::pair<CK_OBJECT_HANDLE, CK_OBJECT_HANDLE> generate_key_pair(Mechanism mechanism,
                                                                    AttributeTemplate& public_template,
                                                                    AttributeTemplate& private_template);
    // Returns the wrapped bytes: one call with a buffer for any common key, a second only
    // when the token answers CKR_BUFFER_TOO_SMALL (no length query first).
    Bytes wrap_key(Mechanism mechanism, CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key);
    CK_OBJECT_HANDLE unwrap_key(Mechanism mechanism, CK_OBJECT_HANDLE unwrapping_key,
                                std::span<const std::uint8_t> wrapped, AttributeTemplate& attributes);
    CK_OBJECT_HANDLE derive_key(Mechanism mechanism, CK_OBJECT_HANDLE base_key, AttributeTemplate& attributes);

    Bytes sign(Mechanism mechanism, CK_OBJECT_HANDLE key, std::span<const std::uint8_t> data);
    // False for CKR_SIGNATURE_INVALID / CKR_SIGNATURE_LEN_RANGE; other failures throw.
    bool verify(Mechanism mechanism, CK_OBJECT_HANDLE key, std::span<const std::uint8_t> data,
                std::span<const std::uint8_t> signature);
    Bytes encrypt(Mechanism mechanism, CK_OBJECT_HANDLE key, std::span<const std::uint8_t> data);
    SecretBytes decrypt(Mechanism mechanism, CK_OBJECT_HANDLE key, std::span<const std::uint8_t> data);
    void generate_random(std::span<std::uint8_t> out);

    // What could not be cleaned up in this session: an object a ScopedObject failed to
    // destroy ("could not remove object 7 from the token: C_DestroyObject: CKR_..."). The
    // PKCS#11 layer never writes to stderr; the session's owner reports these (the CLI as
    // warnings). With a listener each failure goes to it as it happens, which also covers
    // failures while an error unwinds the stack; without one they are kept until taken.
    using CleanupListener = std::function<void(const std::string& failure)>;
    void on_cleanup_failure(CleanupListener listener) { cleanup_listener_ = std::move(listener); }
    std::vector<std::string> take_cleanup_failures() { return std::exchange(cleanup_failures_, {}); }
    void report_cleanup_failure(std::string failure) noexcept;

private:
    std::shared_ptr<Module> module_;
    CK_FUNCTION_LIST* f_;
    CK_SLOT_ID slot_;
    bool read_write_;
    CK_SESSION_HANDLE handle_ = CK_INVALID_HANDLE;
    CleanupListener cleanup_listener_;
    std::vector<std::string> cleanup_failures_;
    std::optional<MechanismList> mechanisms_;
};

// Destroys a (session) object when it goes out of scope, unless released: ephemeral
// wrapping keys, and objects a failed restore must not leave behind. Movable: the object
// then belongs to the target, and the source destroys nothing. A destroy that fails is
// never thrown from the destructor; it goes to the session's report_cleanup_failure.
class ScopedObject {
public:
    ScopedObject(Session& session, CK_OBJECT_HANDLE handle) : session_(&session), handle_(handle) {}
    ~ScopedObject() { destroy(); }
    ScopedObject(const ScopedObject&) = delete;
    ScopedObject& operator=(const ScopedObject&) = delete;
    ScopedObject(ScopedObject&& other) noexcept
        : session_(other.session_), handle_(std::exchange(other.handle_, CK_INVALID_HANDLE)) {}
    ScopedObject& operator=(ScopedObject&& other) noexcept {
        if (this != &other) {
            destroy();
            session_ = other.session_;
            handle_ = std::exchange(other.handle_, CK_INVALID_HANDLE);
        }
        return *this;
    }
    CK_OBJECT_HANDLE get() const { return handle_; }
    CK_OBJECT_HANDLE release() { return std::exchange(handle_, CK_INVALID_HANDLE); }

private:
    void destroy() noexcept;

    Session* session_;
    CK_OBJECT_HANDLE handle_;
};

}  // namespace p11vault::pkcs11
