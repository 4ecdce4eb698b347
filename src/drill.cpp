// SPDX-License-Identifier: Apache-2.0
#include "src/drill.hpp"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "pkcs11/error.hpp"
#include "src/progress.hpp"
#include "src/keys.hpp"
#include "src/object_text.hpp"
#include "src/quirks.hpp"
#include "src/restore.hpp"
#include "src/secret_random.hpp"
#include "src/session_pool.hpp"
#include "src/token.hpp"

namespace p11vault {

namespace {

constexpr const char* kDrillLabel = "p11vault-drill";
const std::uint8_t kMessage[] = "p11vault drill: this backup restores and signs";

// A private SoftHSM home for the drill: a fresh directory with an empty token directory
// and a softhsm2.conf naming it, removed (with the drill's token) when it goes.
class DrillHome {
public:
    DrillHome() {
        const char* base = std::getenv("TMPDIR");
        std::string pattern = std::string(base && *base ? base : "/tmp") + "/p11vault-drill-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr)
            throw Error(ErrorKind::failure, "cannot create a temporary directory for the drill");
        dir_ = pattern;
        config_path_ = dir_ + "/softhsm2.conf";
        std::filesystem::create_directory(dir_ + "/tokens");
        std::ofstream conf(config_path_);
        conf << "directories.tokendir = " << dir_ << "/tokens\nobjectstore.backend = file\nlog.level = ERROR\n";
    }
    ~DrillHome() {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    DrillHome(const DrillHome&) = delete;
    DrillHome& operator=(const DrillHome&) = delete;
    const std::string& config_path() const { return config_path_; }

private:
    std::string dir_;
    std::string config_path_;
};

// SoftHSM2 pointed at the drill's home while this lives: the caller's DrillEnvironment
// sets SOFTHSM2_CONF (the library never changes the environment), and is told to put it
// back when this goes. Without the check a careless DrillEnvironment would let the drill
// make its token in the caller's own SoftHSM2 directory and leave it there.
class SoftHsmAtDrillHome {
public:
    SoftHsmAtDrillHome(DrillEnvironment& environment, const std::string& config_path) : environment_(environment) {
        environment_.enter(config_path);
        const char* current = std::getenv("SOFTHSM2_CONF");
        if (current == nullptr || config_path != current) {
            environment_.leave();
            throw Error(ErrorKind::usage, "the drill's DrillEnvironment did not point SOFTHSM2_CONF at the drill's "
                                          "configuration: the drill does not run in another SoftHSM2 directory");
        }
    }
    ~SoftHsmAtDrillHome() { environment_.leave(); }
    SoftHsmAtDrillHome(const SoftHsmAtDrillHome&) = delete;
    SoftHsmAtDrillHome& operator=(const SoftHsmAtDrillHome&) = delete;

private:
    DrillEnvironment& environment_;
};

SecretBytes random_pin() {
    return random_hex_secret(16);
}

std::vector<std::uint8_t> sha256_of_message() { return ossl::sha256(kMessage, sizeof kMessage); }

// r||s (PKCS#11) -> DER ECDSA-Sig-Value (OpenSSL); a DSA-Sig-Value is the same SEQUENCE.
std::vector<std::uint8_t> ecdsa_der(const std::vector<std::uint8_t>& raw) {
    using EcdsaSig = ossl::Owned<ECDSA_SIG, ECDSA_SIG_free>;
    std::size_t half = raw.size() / 2;
    EcdsaSig sig(ECDSA_SIG_new());
    ECDSA_SIG_set0(sig.get(), BN_bin2bn(raw.data(), static_cast<int>(half), nullptr),
                   BN_bin2bn(raw.data() + half, static_cast<int>(half), nullptr));
    return ossl::der(i2d_ECDSA_SIG, sig.get(), ErrorKind::failure, "the drill's signature");
}

bool host_verify(const EVP_PKEY* key, CK_KEY_TYPE type, const std::vector<std::uint8_t>& signature) {
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    EVP_PKEY* pkey = const_cast<EVP_PKEY*>(key);
    if (type == CKK_EC || type == CKK_DSA) {
        ossl::PkeyCtx pctx(EVP_PKEY_CTX_new_from_pkey(ossl::libctx(), pkey, nullptr));
        auto digest = sha256_of_message();
        auto der = ecdsa_der(signature);
        return pctx && EVP_PKEY_verify_init(pctx.get()) == 1 &&
               EVP_PKEY_verify(pctx.get(), der.data(), der.size(), digest.data(), digest.size()) == 1;
    }
    const char* md = type == CKK_RSA ? "SHA256" : nullptr;
    EVP_PKEY_CTX* pctx = nullptr;
    if (EVP_DigestVerifyInit_ex(ctx.get(), &pctx, md, ossl::libctx(), nullptr, pkey, nullptr) != 1) return false;
    if (EVP_PKEY_is_a(key, "RSA-PSS") &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1))
        return false;
    return EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), kMessage, sizeof kMessage) == 1;
}

std::string exercise_key(pkcs11::Session& session, CK_OBJECT_HANDLE handle, CK_KEY_TYPE type, const EVP_PKEY* public_key) {
    std::vector<std::uint8_t> signature;
    // An RSA-PSS key (restricted to PSS by its algorithm identifier) signs with PSS only
    // and does not encrypt.
    const bool pss = EVP_PKEY_is_a(public_key, "RSA-PSS");
    if (type == CKK_RSA && pss) {
        CK_RSA_PKCS_PSS_PARAMS params{CKM_SHA256, CKG_MGF1_SHA256, 32};
        signature = session.sign(pkcs11::Mechanism::with_struct(CKM_SHA256_RSA_PKCS_PSS, params), handle, kMessage);
    } else if (type == CKK_RSA) {
        signature = session.sign(pkcs11::Mechanism(CKM_SHA256_RSA_PKCS), handle, kMessage);
    } else if (type == CKK_EC) {
        signature = session.sign(pkcs11::Mechanism(CKM_ECDSA), handle, sha256_of_message());  // no CKM_ECDSA_SHA256 on SoftHSM
    } else if (type == CKK_DSA) {
        signature = session.sign(pkcs11::Mechanism(CKM_DSA), handle, sha256_of_message());
    } else {
        signature = session.sign(pkcs11::Mechanism(CKM_EDDSA), handle, kMessage);
    }
    if (!host_verify(public_key, type, signature))
        throw Error(ErrorKind::bad_input, "the signature made with the restored key does not verify with the file's public key");
    std::string detail = pss ? "signed (PSS) and verified" : "signed and verified";
    if (type == CKK_RSA && !pss) {
        ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(ossl::libctx(), const_cast<EVP_PKEY*>(public_key), nullptr));
        std::vector<std::uint8_t> cipher(static_cast<std::size_t>(EVP_PKEY_get_size(public_key)));
        std::size_t length = cipher.size();
        if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1 ||
            EVP_PKEY_encrypt(ctx.get(), cipher.data(), &length, kMessage, sizeof kMessage) != 1)
            ossl::fail(ErrorKind::failure, "RSA encryption for the drill");
        cipher.resize(length);
        SecretBytes plain = session.decrypt(pkcs11::Mechanism(CKM_RSA_PKCS), handle, cipher);
        if (plain.size() != sizeof kMessage || std::memcmp(plain.data(), kMessage, sizeof kMessage) != 0)
            throw Error(ErrorKind::bad_input, "the restored RSA key does not decrypt what its public key encrypted");
        detail += ", encrypted and decrypted";
    }
    return detail;
}

}  // namespace

bool signs_for(pkcs11::Session& session, CK_OBJECT_HANDLE handle, CK_KEY_TYPE type, const EVP_PKEY* public_key) {
    try {
        exercise_key(session, handle, type, public_key);
        return true;
    } catch (const Error&) {
        return false;
    }
}

std::vector<DrillResult> run_drill(pkcs12::Reader& reader, const Verification& verification,
                                   const std::string& softhsm_module, DrillEnvironment& environment, unsigned jobs) {
    std::string module_path = softhsm_module.empty() ? default_softhsm_module() : softhsm_module;
    if (module_path.empty() || !std::filesystem::exists(module_path))
        throw Error(ErrorKind::token, "--drill needs the SoftHSM2 module (apt-get install softhsm2)");
    DrillHome home;
    SoftHsmAtDrillHome pointed(environment, home.config_path());  // released after the module below
    std::vector<DrillResult> results;
    {
        auto module = pkcs11::Module::load(module_path);
        if (!module->owns_initialization())
            throw Error(ErrorKind::token, "--drill cannot run: SoftHSM2 is already initialized in this process");
        std::vector<CK_SLOT_ID> slots = module->slots(true);
        if (slots.empty()) throw Error(ErrorKind::token, "SoftHSM2 offers no slot for the drill token");
        SecretBytes so_pin = random_pin();
        SecretBytes user_pin = random_pin();
        module->init_token(slots.front(), so_pin, kDrillLabel);
        // SoftHSM moves an initialized token to a new slot id: look it up by label.
        std::optional<CK_SLOT_ID> slot;
        for (CK_SLOT_ID s : module->slots(true))
            if (module->token_info(s).label == kDrillLabel) slot = s;
        if (!slot) throw Error(ErrorKind::token, "the drill token disappeared after C_InitToken");
        pkcs11::Session session(module, *slot, true);
        session.login(so_pin, pkcs11::UserType::security_officer);
        session.init_pin(user_pin);
        session.logout();
        session.login(user_pin);

        RestoreOptions options;
        options.skip_unsupported = true;
        options.jobs = jobs;
        const TokenQuirks quirks = quirks_for(session);
        RestoreResult restored = run_restore(session, quirks, reader, options);
        const std::size_t count = std::min(restored.keys.size(), verification.keys.size());
        results.resize(count);
        std::vector<std::string> said_by_the_restore;
        SessionPool pool = SessionPool::for_token(session, quirks, jobs, /*read_write=*/true, said_by_the_restore);
        const auto name_of = [&](std::size_t i) { return describe_object(restored.keys[i].id, restored.keys[i].label); };
        pool.for_each(
            count,
            [&](unsigned worker, std::size_t i) {
                const KeyReport& report = restored.keys[i];
                const VerifiedKey& key = verification.keys[i];
                DrillResult& result = results[i];
                result.id = report.id;
                result.label = report.label;
                result.type = key.type;
                result.key = name_of(i) + " " + key.type;
                if (report.status != "restored") {
                    result.detail = "not restored: " + (report.notes.empty() ? report.status : report.notes.back());
                    return;
                }
                pkcs11::Session& worker_session = pool.session(worker);
                try {
                    pkcs11::AttributeTemplate match;
                    match.add_class(CKO_PRIVATE_KEY).add_bytes(CKA_ID, report.id);
                    auto handles = worker_session.find(match, 2);
                    if (handles.size() != 1)
                        throw Error(ErrorKind::failure, "the restored key is not found by its CKA_ID");
                    CK_KEY_TYPE type = worker_session.get_ulong(handles.front(), CKA_KEY_TYPE).value_or(CKK_RSA);
                    result.detail = fmt::format("restored ({}), {}", report.path,
                                                exercise_key(worker_session, handles.front(), type, key.public_key.get()));
                    result.ok = true;
                } catch (const Error& e) {
                    result.detail = e.what();
                }
            },
            [&](std::size_t i) { progress::report(i, restored.keys.size(), "drill: " + name_of(i)); });
        session.logout();
    }
    return results;
}

}  // namespace p11vault
