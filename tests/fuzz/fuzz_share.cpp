// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: see share_one in targets.hpp. Build and run with scripts/fuzz share SECONDS.
#include "tests/fuzz/targets.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    p11vault::fuzz::set_up_environment();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    p11vault::fuzz::share_one(data, size);
    return 0;
}
