// SPDX-License-Identifier: Apache-2.0
// Printouts of a password share for a key ceremony (`split --qr`, `split --sheet`): the
// share's QR code as a PNG with a caption, and a page to print (PDF or HTML) holding that
// share only: its QR code, its text lines with their checksums, share I of N, the
// threshold, the set, the date, the share's fingerprint, signature lines for custodian and
// witness, and handling instructions. The QR code is made by the qrencode program.
//
// Every printout holds a share and is returned as SecretBytes. The drawing library and
// qrencode keep working copies of the text while they run; those are freed, not wiped.
#pragma once

#include <optional>
#include <string>

#include "p11vault/export.hpp"
#include "p11vault/secret.hpp"
#include "p11vault/shares.hpp"

namespace p11vault {

enum class ShareSheetFormat { pdf, html };

struct SharePrintRequest {
    bool qr_image = false;                   // the captioned QR code, PNG
    std::optional<ShareSheetFormat> sheet;   // a page to print
    std::string date;                        // printed on the sheet ("2026-12-03"), the day of the split
};

// What was asked for; a member not asked for is empty.
struct SharePrintouts {
    SecretBytes qr_image;
    SecretBytes sheet;
};

// Whether qrencode can be run (every printout needs it): ask before writing anything.
P11VAULT_EXPORT bool share_printing_available();

// The printouts of one share. Error(failure) when qrencode is missing or fails, or the
// share does not fit in a QR code.
P11VAULT_EXPORT SharePrintouts print_share(const PasswordShare& share, const SharePrintRequest& request);

// The first 128 bits of SHA-256 over a share's text, in groups of four hex digits
// ("3f9a 1c0d ..."): on the sheet, so that a custodian can check that the page, its QR
// code and a typed-back copy hold the same share. It reveals nothing the share does not.
P11VAULT_EXPORT std::string share_fingerprint(const SecretBytes& share_text);

}  // namespace p11vault
