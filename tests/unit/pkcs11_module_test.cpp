// SPDX-License-Identifier: Apache-2.0
// Module: loading, the shared/foreign initialization rules, and token information, on
// real SoftHSM and NSS softoken modules.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "pkcs11/error.hpp"
#include "pkcs11/module.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using pkcs11::Module;

// A module configuration without a token, for tests that must load the module before
// any TestToken does (a TestToken would already have initialized it).
struct BareConfig {
    std::string dir;
    std::string path;
    std::optional<std::string> init;

    explicit BareConfig(Backend backend) : dir(make_temp_dir("module-test")) {
        if (backend == Backend::softhsm) {
            std::filesystem::create_directory(dir + "/tokens");
            std::ofstream(dir + "/softhsm2.conf") << "directories.tokendir = " << dir
                                                  << "/tokens\nobjectstore.backend = file\nlog.level = ERROR\n";
            setenv("SOFTHSM2_CONF", (dir + "/softhsm2.conf").c_str(), 1);
            path = softhsm_module_path;
        } else {
            path = nss_module_path;
            init = "configdir='sql:" + dir + "' certPrefix='' keyPrefix='' secmod='secmod.db' flags=";
        }
    }
    ~BareConfig() { std::filesystem::remove_all(dir); }
};

class Pkcs11ModuleTest : public ::testing::TestWithParam<Backend> {};

TEST_P(Pkcs11ModuleTest, SecondLoadSharesTheInitializationAndTheLastOneFinalizes) {
    BareConfig config(GetParam());
    auto first = Module::load(config.path, config.init);
    EXPECT_TRUE(first->owns_initialization());
    ::testing::internal::CaptureStderr();
    auto second = Module::load(config.path, config.init);
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "") << "debug logging is off";
    EXPECT_FALSE(second->owns_initialization());
    EXPECT_EQ(first->functions(), second->functions());

    // Dropping either one leaves the module usable for the other.
    second.reset();
    EXPECT_NO_THROW(first->info());
    second = Module::load(config.path, config.init);
    first.reset();
    EXPECT_NO_THROW(second->info());
    EXPECT_FALSE(second->slots().empty());

    // The last one finalized it: the next load initializes afresh. (C_GetTokenInfo: NSS
    // answers C_GetInfo and C_GetSlotList with CKR_OK even when not initialized.)
    CK_FUNCTION_LIST* functions = second->functions();
    CK_SLOT_ID slot = second->slots().front();
    second.reset();
    CK_TOKEN_INFO info{};
    EXPECT_EQ(functions->C_GetTokenInfo(slot, &info), static_cast<CK_RV>(CKR_CRYPTOKI_NOT_INITIALIZED));
    auto third = Module::load(config.path, config.init);
    EXPECT_TRUE(third->owns_initialization());
}

TEST_P(Pkcs11ModuleTest, ForeignInitializationIsUsedAndNeverFinalized) {
    BareConfig config(GetParam());
    // Play libp11: initialize the module behind our back.
    void* handle = dlopen(config.path.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle, nullptr);
    auto get_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle, "C_GetFunctionList"));
    CK_FUNCTION_LIST* functions = nullptr;
    ASSERT_EQ(get_list(&functions), static_cast<CK_RV>(CKR_OK));
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    std::string init = config.init.value_or("");
    args.pReserved = config.init ? init.data() : nullptr;
    ASSERT_EQ(functions->C_Initialize(&args), static_cast<CK_RV>(CKR_OK));

    {
        auto module = Module::load(config.path, config.init);
        EXPECT_FALSE(module->owns_initialization());
        EXPECT_NO_THROW(module->info());
    }
    CK_SLOT_ID slots[8];
    CK_ULONG count = 8;
    ASSERT_EQ(functions->C_GetSlotList(CK_FALSE, slots, &count), static_cast<CK_RV>(CKR_OK));
    CK_TOKEN_INFO info{};
    EXPECT_EQ(functions->C_GetTokenInfo(slots[0], &info), static_cast<CK_RV>(CKR_OK))
        << "Module finalized a module it did not initialize";
    EXPECT_EQ(functions->C_Finalize(nullptr), static_cast<CK_RV>(CKR_OK));
    dlclose(handle);
}

TEST_P(Pkcs11ModuleTest, TokenInfoDescribesTheTestToken) {
    TestToken token(GetParam());
    auto module = token.module();
    auto slots = module->slots();
    EXPECT_NE(std::find(slots.begin(), slots.end(), token.slot()), slots.end());
    EXPECT_TRUE(module->slot_info(token.slot()).token_present());

    auto info = module->token_info(token.slot());
    EXPECT_EQ(info.label, token.label());
    EXPECT_TRUE(info.token_initialized());
    EXPECT_TRUE(info.user_pin_initialized());
    EXPECT_TRUE(info.login_required());
    EXPECT_FALSE(info.pin_locked());
    EXPECT_FALSE(info.manufacturer.empty());
    ASSERT_FALSE(info.label.empty());
    EXPECT_NE(info.label.back(), ' ');

    auto module_info = module->info();
    EXPECT_FALSE(module_info.manufacturer.empty());
    EXPECT_EQ(module_info.cryptoki_version.major, 2);
}

TEST_P(Pkcs11ModuleTest, MechanismListHasTheWrapMechanismThisBackendUses) {
    TestToken token(GetParam());
    auto module = token.module();
    CK_MECHANISM_TYPE wrap = GetParam() == Backend::softhsm ? CKM_AES_KEY_WRAP_PAD : CKM_AES_CBC_PAD;
    auto mechanisms = module->mechanisms(token.slot());
    auto found = std::find_if(mechanisms.begin(), mechanisms.end(),
                              [wrap](const pkcs11::MechanismEntry& m) { return m.type == wrap; });
    ASSERT_NE(found, mechanisms.end()) << pkcs11::mechanism_name(wrap);
    EXPECT_TRUE(found->has(CKF_WRAP));
    EXPECT_TRUE(found->has(CKF_UNWRAP));

    auto info = module->mechanism_info(token.slot(), wrap);
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->flags, found->info.flags);
    EXPECT_FALSE(module->mechanism_info(token.slot(), CKM_VENDOR_DEFINED | 0x1234).has_value());
}

INSTANTIATE_TEST_SUITE_P(Backends, Pkcs11ModuleTest, all_backends(), BackendParamName());

TEST(Pkcs11Module, MissingLibraryIsATokenErrorNamingThePath) {
    try {
        Module::load("/nonexistent/libnothing.so");
        FAIL() << "no exception";
    } catch (const pkcs11::Pkcs11Error&) {
        FAIL() << "not a PKCS#11 call failure";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::token);
        EXPECT_NE(std::string(e.what()).find("/nonexistent/libnothing.so"), std::string::npos) << e.what();
    }
}

// Issue 18, item 5: openCryptoki's C_Initialize answers CKR_HOST_MEMORY when its slot
// daemon is not running.
TEST(Pkcs11Module, HostMemoryAtInitializeOfOpenCryptokiHintsAtItsSlotDaemon) {
    const std::string daemon = "openCryptoki answers this when its slot daemon pkcsslotd is not running";
    for (const std::string path : {"/usr/lib/x86_64-linux-gnu/opencryptoki/libopencryptoki.so",
                                   "/usr/lib/pkcs11/libopencryptoki.so.0", "libopencryptoki.so"}) {
        const std::string hint = pkcs11::initialize_failure_hint(path, CKR_HOST_MEMORY, false);
        EXPECT_EQ(hint, "module " + path + "; " + daemon);
    }
    EXPECT_EQ(pkcs11::initialize_failure_hint("/usr/lib/softhsm/libsofthsm2.so", CKR_HOST_MEMORY, false),
              "module /usr/lib/softhsm/libsofthsm2.so");
    EXPECT_EQ(pkcs11::initialize_failure_hint("/opt/libopencryptoki/libsofthsm2.so", CKR_HOST_MEMORY, false),
              "module /opt/libopencryptoki/libsofthsm2.so")
        << "the file's name counts, not a directory's";
    EXPECT_EQ(pkcs11::initialize_failure_hint("/usr/lib/libopencryptoki.so", CKR_DEVICE_ERROR, false),
              "module /usr/lib/libopencryptoki.so");
    EXPECT_EQ(pkcs11::initialize_failure_hint("/x/libsofthsm2.so", CKR_ARGUMENTS_BAD, false),
              "module /x/libsofthsm2.so; it may need init parameters: --module-init");
}

TEST(Pkcs11Module, LibraryWithoutFunctionListIsRejected) {
    try {
        Module::load("libz.so.1");
        FAIL() << "no exception";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::token);
        EXPECT_NE(std::string(e.what()).find("not a PKCS#11 module"), std::string::npos) << e.what();
    }
}

TEST(Pkcs11Module, NssWithoutInitStringFailsWithArgumentsBad) {
    try {
        Module::load(nss_module_path);
        FAIL() << "no exception";
    } catch (const pkcs11::Pkcs11Error& e) {
        EXPECT_EQ(e.rv(), static_cast<CK_RV>(CKR_ARGUMENTS_BAD));
        EXPECT_EQ(e.kind(), ErrorKind::token);
        EXPECT_EQ(std::string(e.what()).rfind("C_Initialize: CKR_ARGUMENTS_BAD (", 0), 0u) << e.what();
        EXPECT_NE(std::string(e.what()).find("--module-init"), std::string::npos) << e.what();
    }
}

TEST(Pkcs11Module, NssWithMissingDatabaseDirectoryReportsTheNssCode) {
    try {
        Module::load(nss_module_path, "configdir='sql:/nonexistent/p11vault' certPrefix='' keyPrefix='' "
                                      "secmod='secmod.db' flags=");
        FAIL() << "no exception";
    } catch (const pkcs11::Pkcs11Error& e) {
        EXPECT_EQ(e.rv(), 0xCE534351UL);
        EXPECT_EQ(std::string(e.what()).rfind("C_Initialize: CKR_NSS_CERTDB_FAILED", 0), 0u) << e.what();
    }
}

TEST(Pkcs11Module, SecondNssConfigurationInOneProcessIsRefused) {
    TestToken token(Backend::nss);
    BareConfig other(Backend::nss);
    try {
        Module::load(other.path, other.init);
        FAIL() << "no exception";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::token);
        EXPECT_NE(std::string(e.what()).find("already in use in this process with other --module-init parameters"), std::string::npos) << e.what();
    }
    EXPECT_NO_THROW(token.module()->info());
}

TEST(Pkcs11Module, TrimPaddedRemovesBlanksAndNuls) {
    const CK_UTF8CHAR blanks[8] = {'a', ' ', 'b', ' ', ' ', ' ', ' ', ' '};
    EXPECT_EQ(pkcs11::trim_padded(blanks, sizeof blanks), "a b");
    const CK_UTF8CHAR nuls[6] = {'x', 'y', 0, 0, 0, 0};
    EXPECT_EQ(pkcs11::trim_padded(nuls, sizeof nuls), "xy");
    const CK_UTF8CHAR empty[4] = {' ', ' ', ' ', ' '};
    EXPECT_EQ(pkcs11::trim_padded(empty, sizeof empty), "");
}

}  // namespace
}  // namespace p11vault::testing
