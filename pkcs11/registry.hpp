// SPDX-License-Identifier: Apache-2.0
// The modules registered with p11-kit (`p11-kit list-modules`): a user names a module as
// p11-kit users do (`--module softhsm2`) instead of by its path, and p11vault's default is
// p11-kit's proxy, through which every registered module is reachable.
#pragma once

#include <string>
#include <vector>

namespace p11vault::pkcs11 {

struct RegisteredModule {
    std::string name;  // the configuration file's name without ".module"
    std::string path;  // absolute: relative `module:` values resolved as p11-kit does
};

// Every module p11-kit's configuration registers for this program, by name. Reading it
// loads (dlopen) each module library, as p11-kit does, but initializes none.
std::vector<RegisteredModule> registered_modules();

// The path of p11-kit's proxy module, as the installed p11-kit names it.
std::string p11kit_proxy_path();

}  // namespace p11vault::pkcs11
