// SPDX-License-Identifier: Apache-2.0
#include "src/pkcs12/key_decoder.hpp"

#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include <utility>

namespace p11vault::pkcs12 {

// A decoder context writes each key it decodes into the EVP_PKEY* it was made with, so
// the two live together, at a fixed address.
struct KeyDecoder::Context {
    EVP_PKEY* decoded = nullptr;
    OSSL_DECODER_CTX* decoder = nullptr;
    ~Context() {
        EVP_PKEY_free(decoded);
        OSSL_DECODER_CTX_free(decoder);
    }
};

KeyDecoder::KeyDecoder() = default;
KeyDecoder::~KeyDecoder() = default;

KeyDecoder::Context* KeyDecoder::context_for(const std::string& key_type) {
    auto found = contexts_.find(key_type);
    if (found != contexts_.end()) return found->second.get();
    auto context = std::make_unique<Context>();
    // The same arguments EVP_PKCS82PKEY_ex passes (the key type is the algorithm's OID).
    context->decoder = OSSL_DECODER_CTX_new_for_pkey(&context->decoded, "DER", "PrivateKeyInfo", key_type.c_str(),
                                                     EVP_PKEY_KEYPAIR, ossl::libctx(), nullptr);
    if (context->decoder != nullptr && OSSL_DECODER_CTX_get_num_decoders(context->decoder) == 0) {
        OSSL_DECODER_CTX_free(context->decoder);
        context->decoder = nullptr;
    }
    return contexts_.emplace(key_type, std::move(context)).first->second.get();
}

ossl::Pkey KeyDecoder::decode(const PKCS8_PRIV_KEY_INFO* info) {
    std::lock_guard lock(mutex_);  // the contexts are reused, one caller at a time
    const ASN1_OBJECT* algorithm = nullptr;
    if (info == nullptr || PKCS8_pkey_get0(&algorithm, nullptr, nullptr, nullptr, info) != 1) return nullptr;
    char key_type[128] = {0};
    const int name_length = OBJ_obj2txt(key_type, sizeof key_type, algorithm, 0);
    Context* context =
        name_length > 0 && name_length < static_cast<int>(sizeof key_type) ? context_for(key_type) : nullptr;
    if (context != nullptr && context->decoder != nullptr) {
        const SecretBytes der = ossl::secret_der(i2d_PKCS8_PRIV_KEY_INFO, info, ErrorKind::bad_input, "a private key");
        const unsigned char* input = der.data();
        std::size_t remaining = der.size();
        context->decoded = nullptr;
        const bool decoded = OSSL_DECODER_from_data(context->decoder, &input, &remaining) == 1;
        ossl::Pkey key(std::exchange(context->decoded, nullptr));
        if (decoded && key) return key;
        ERR_clear_error();  // EVP_PKCS82PKEY_ex below reports the reason itself
    }
    return ossl::Pkey(EVP_PKCS82PKEY_ex(info, ossl::libctx(), nullptr));
}

}  // namespace p11vault::pkcs12
