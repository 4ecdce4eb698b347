// SPDX-License-Identifier: Apache-2.0
// Printable share sheets for a key ceremony (`split --sheet pdf|html`): one page per
// share, holding that share only: its QR code, its text lines with their checksums,
// share I of N, the threshold, the set, the date, the share's fingerprint, signature
// lines for custodian and witness, and handling instructions. Also the caption under the
// QR code image of `split --qr`. Drawn with cairo (PDF, PNG); HTML is written here.
//
// The pages are secrets (each holds a share): they are returned as SecretBytes. cairo
// keeps its own working copies of the text and image while it draws; they are freed, not
// wiped, when the surface is destroyed (the same holds for qrencode's process memory).
#pragma once

#include <string>

#include "p11vault/secret.hpp"

namespace p11vault::sheet {

struct ShareFacts {
    unsigned number = 0;     // I
    unsigned count = 0;      // N
    unsigned threshold = 0;  // K
    std::string set_id;
    std::string date;         // "2026-12-03" (UTC), the day the shares were made
    std::string fingerprint;  // share_fingerprint of the share's text
};

// The first 128 bits of SHA-256 over the share's text, in groups of four hex digits
// ("3f9a 1c0d ..."): printed on the sheet, so that a custodian can check that the page,
// its QR code and a typed-back copy hold the same share. It reveals nothing the share
// itself does not.
std::string share_fingerprint(const SecretBytes& share_text);

// One A4 page, PDF. `qr_png` is the QR code of `share_text` (qr::png_of).
SecretBytes pdf_page(const SecretBytes& share_text, const SecretBytes& qr_png, const ShareFacts& facts);

// One page, HTML with print CSS (A4, one page); the QR code inline as a data: URI.
SecretBytes html_page(const SecretBytes& share_text, const SecretBytes& qr_png, const ShareFacts& facts);

// The QR code image with a caption under it: "share I of N", "set S, any K recover".
SecretBytes captioned_png(const SecretBytes& qr_png, const ShareFacts& facts);

}  // namespace p11vault::sheet
