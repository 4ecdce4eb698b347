// SPDX-License-Identifier: Apache-2.0
// The smallest program against the installed library: prints the version line of the
// p11vault it runs with (the first line of `p11vault --version`) and exits 0 when a
// SecretBytes copy compares equal to its original, 1 otherwise.
//
//   c++ -std=c++20 version.cpp $(pkg-config --cflags --libs p11vault) -o version
#include <p11vault/secret.hpp>
#include <p11vault/version.hpp>

#include <iostream>

int main() {
    std::cout << p11vault::version_text() << '\n';

    // Secrets live in SecretBytes: locked in memory where the system allows, wiped when
    // freed, copied only through clone(), compared in constant time.
    const p11vault::SecretBytes secret = p11vault::SecretBytes::from_text("not a real secret");
    const p11vault::SecretBytes copy = secret.clone();
    return copy == secret ? 0 : 1;
}
