// SPDX-License-Identifier: Apache-2.0
// restore: PKCS#12 -> token, identity intact (CKA_ID = localKeyID, CKA_LABEL =
// friendlyName), keys sensitive and non-extractable by default, all or nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/restore.hpp"  // ConflictPolicy
#include "pkcs11/session.hpp"
#include "src/pkcs12/reader.hpp"
#include "src/quirks.hpp"
#include "src/report.hpp"
#include "src/restore_options.hpp"

namespace p11vault {

struct RestoreResult {
    std::vector<KeyReport> keys;            // every key of the file, with its status
    std::size_t certificates_written = 0;   // certificate objects created (or that would be)
    std::vector<std::string> warnings;
    bool dry_run = false;
};

// Plans every object first (pairing, ids, labels, key types, conflicts: Error before any
// write), then writes; on any failure destroys every object this run created and
// rethrows (the message lists objects that could not be destroyed, if any).
// The attributes of a CKO_CERTIFICATE/CKC_X_509 token object for `cert`: value, subject,
// issuer, serial number, and CKA_ID/CKA_LABEL when not empty.
pkcs11::AttributeTemplate certificate_object_template(const X509* cert, const std::vector<std::uint8_t>& id,
                                                      const std::string& label);

RestoreResult run_restore(pkcs11::Session& session, const TokenQuirks& quirks, pkcs12::Reader& reader,
                          const RestoreOptions& options);

}  // namespace p11vault
