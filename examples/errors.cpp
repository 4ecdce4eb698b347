// SPDX-License-Identifier: Apache-2.0
// Every failure of the library is a p11vault::Error, thrown across the shared library's
// boundary and caught here by type: its kind() says what kind of failure it is, its
// what() what to do next (and never holds a secret). Asks for a PIN from an environment
// variable that is not set; exits 0 when that is reported as a usage error naming the
// variable, 1 otherwise.
#include <p11vault/error.hpp>
#include <p11vault/secret_source.hpp>

#include <iostream>
#include <optional>
#include <string>

int main() {
    const std::string variable = "P11VAULT_EXAMPLE_UNSET_VARIABLE";
    try {
        p11vault::read_secret(std::optional<std::string>("env:" + variable), "PIN", "--pin");
    } catch (const p11vault::Error& error) {
        std::cout << "p11vault::Error " << p11vault::error_kind_name(error.kind()) << ": " << error.what() << '\n';
        const bool names_variable = std::string(error.what()).find(variable) != std::string::npos;
        return error.kind() == p11vault::ErrorKind::usage && names_variable ? 0 : 1;
    }
    std::cout << "no p11vault::Error thrown\n";
    return 1;
}
