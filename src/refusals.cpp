// SPDX-License-Identifier: Apache-2.0
#include "src/refusals.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace p11vault {

std::string fold_refusals(const std::vector<Refusal>& refusals) {
    std::vector<std::pair<std::string, std::vector<std::string>>> by_reason;  // reason, names
    for (const Refusal& refusal : refusals) {
        auto group = std::find_if(by_reason.begin(), by_reason.end(),
                                  [&](const auto& entry) { return entry.first == refusal.item.reason; });
        if (group == by_reason.end()) group = by_reason.insert(by_reason.end(), {refusal.item.reason, {}});
        group->second.push_back(refusal.name);
    }
    constexpr std::size_t named = 3;
    std::string text;
    for (const auto& [reason, names] : by_reason) {
        const std::vector<std::string> first(names.begin(), names.begin() + std::min(names.size(), named));
        text += fmt::format("{}{} key{} ({}{}): {}", text.empty() ? "" : "; ", names.size(),
                            names.size() == 1 ? "" : "s", fmt::join(first, ", "),
                            names.size() > named ? fmt::format(" and {} more", names.size() - named) : "", reason);
    }
    return text;
}

void throw_refusals(ErrorKind code, const std::string& lead, const std::vector<Refusal>& refusals,
                    const std::string& tail) {
    std::vector<ErrorItem> items;
    items.reserve(refusals.size());
    for (const Refusal& refusal : refusals) items.push_back(refusal.item);
    const std::string what = refusals.size() == 1 ? refusals.front().name + ": " + refusals.front().item.reason
                                                  : lead + ": " + fold_refusals(refusals);
    throw Error(code, what + "; " + tail, std::move(items));
}

}  // namespace p11vault
