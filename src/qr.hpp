// SPDX-License-Identifier: Apache-2.0
// QR codes of share texts, for printing and scanning at a ceremony (`split --qr`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "p11vault/secret.hpp"

namespace p11vault::qr {

// A PNG image of a QR code holding `text` exactly, made by the qrencode program (found in
// the system's directories, run as src/secret_filter.hpp says: the text on its stdin, a
// minimal environment). Throws Error(failure) when qrencode is missing, fails, or the
// text does not fit in a QR code.
SecretBytes png_of(const SecretBytes& text);

// Whether qrencode can be run; checked before anything is written.
bool available();

}  // namespace p11vault::qr
