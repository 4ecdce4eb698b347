// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/registry.hpp"

#include <p11-kit/p11-kit.h>

#include <cstdlib>
#include <memory>

namespace p11vault::pkcs11 {
namespace {

struct ModulesRelease {
    void operator()(CK_FUNCTION_LIST** modules) const noexcept { p11_kit_modules_release(modules); }
};
struct FreeString {
    void operator()(char* text) const noexcept { std::free(text); }
};
using OwnedString = std::unique_ptr<char, FreeString>;

// p11-kit resolves a relative `module:` value against its module directory
// (p11-kit-1.pc's p11_module_path, given by the build).
std::string absolute_module_path(const std::string& configured) {
    if (configured.empty() || configured.front() == '/') return configured;
    return std::string(P11VAULT_P11KIT_MODULE_PATH) + "/" + configured;
}

}  // namespace

std::vector<RegisteredModule> registered_modules() {
    std::vector<RegisteredModule> found;
    // UNMANAGED: the plain function lists, no p11-kit wrapper, nothing initialized.
    std::unique_ptr<CK_FUNCTION_LIST*, ModulesRelease> modules(
        p11_kit_modules_load(nullptr, P11_KIT_MODULE_UNMANAGED));
    if (!modules) return found;
    for (CK_FUNCTION_LIST** module = modules.get(); *module != nullptr; ++module) {
        OwnedString name(p11_kit_module_get_name(*module));
        OwnedString path(p11_kit_config_option(*module, "module"));
        if (!name || !path) continue;
        found.push_back({name.get(), absolute_module_path(path.get())});
    }
    return found;
}

std::string p11kit_proxy_path() { return P11VAULT_P11KIT_PROXY; }

}  // namespace p11vault::pkcs11
