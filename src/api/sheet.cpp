// SPDX-License-Identifier: Apache-2.0
// The public face of src/qr.hpp and src/sheet.hpp (include/p11vault/sheet.hpp).
#include "p11vault/sheet.hpp"

#include "src/qr.hpp"
#include "src/sheet.hpp"

namespace p11vault {

bool share_printing_available() { return qr::available(); }

SharePrintouts print_share(const PasswordShare& share, const SharePrintRequest& request) {
    SharePrintouts out;
    if (!request.qr_image && !request.sheet) return out;
    // One QR code serves both printouts: qrencode runs once per share.
    const SecretBytes code = qr::png_of(share.text);
    const sheet::ShareFacts facts{share.info.number, share.info.count, share.info.threshold, share.info.set_id,
                                  request.date, sheet::share_fingerprint(share.text)};
    if (request.qr_image) out.qr_image = sheet::captioned_png(code, facts);
    if (request.sheet)
        out.sheet = *request.sheet == ShareSheetFormat::pdf ? sheet::pdf_page(share.text, code, facts)
                                                            : sheet::html_page(share.text, code, facts);
    return out;
}

std::string share_fingerprint(const SecretBytes& share_text) { return sheet::share_fingerprint(share_text); }

}  // namespace p11vault
