#include "src/cli/reports.hpp"

#include "src/cli/common.hpp"
#include "src/ossl.hpp"

namespace p11vault::cli {

void print_key_table(const std::vector<KeyReport>& keys, bool with_status) {
    std::vector<std::string> headings = {"ID", "LABEL", "TYPE", "PATH"};
    if (with_status) headings.push_back("STATUS");
    headings.push_back("CERTIFICATE");
    Table table(headings);
    for (const auto& key : keys) {
        std::vector<std::string> row = {key.id.empty() ? "-" : ossl::hex(key.id), printable(key.label), key.type,
                                        key.path.empty() ? "-" : key.path};
        if (with_status) row.push_back(key.status);
        row.push_back(key.certificate_subject ? printable(*key.certificate_subject) : "(none)");
        table.add_row(row);
    }
    table.print(stdout);
}

void print_warnings(const std::vector<std::string>& warnings) {
    for (const auto& warning : warnings) std::fprintf(stderr, "p11vault: warning: %s\n", printable(warning).c_str());
}

}  // namespace p11vault::cli
